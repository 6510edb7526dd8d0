"""numcnn serve in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

It draws a stroke, reads the prediction, opens a conv layer's map, clicks an output pixel and
checks that the sum the page shows equals the map's value, and that both are numcnn's.

Run as a script, it takes the README's screenshots of a trained model instead:

    python tests/test_serve_browser.py runs/demo docs/serve-page.png docs/serve-detail.png
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import sys

import pytest

pytest.importorskip("starlette", reason="numcnn serve needs the serve extra: pip install 'numcnn[serve]'")
playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs Playwright: "
                                     "pip install playwright")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no Chromium to drive: apt-get install -y chromium (Playwright's own browser download is "
                "not used)", allow_module_level=True)

import numpy as np  # noqa: E402

from test_serve import LiveServer, png, tiny_model_file  # noqa: E402


def launch(playwright):
    # --no-sandbox: the tests may run as root (in a container), where Chromium's sandbox refuses to start.
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])


def draw_stroke(page, points):
    """Drag the mouse through points given as fractions (0..1) of the drawing canvas."""
    box = page.locator("#draw").bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def number(page, selector) -> float:
    return float(page.locator(selector).inner_text())


def click_cell(page, y, x):
    """Click the centre of pixel (y, x) of the enlarged map."""
    canvas = page.locator("#zoom-map")
    box = canvas.bounding_box()
    cell = float(canvas.get_attribute("data-cell")) * box["width"] / canvas.evaluate("c => c.width")
    canvas.click(position={"x": (x + 0.5) * cell, "y": (y + 0.5) * cell})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tiny_model_file(tmp_path_factory.mktemp("browser")))
    yield live
    live.close()


@contextlib.contextmanager
def opened(server):
    """(page, errors): the server's page in a fresh headless Chromium; errors collects the page's
    uncaught JavaScript errors."""
    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url)
            yield page, errors
        finally:
            browser.close()


def test_draw_predict_and_follow_a_conv_output_back_to_its_sum(server):
    with opened(server) as (page, errors):
        page.locator("#draw-area").wait_for(state="visible")
        draw_stroke(page, [(0.3, 0.2), (0.5, 0.5), (0.55, 0.85)])
        page.locator("body[data-ready='1']").wait_for()

        # The prediction shown is numcnn's for exactly the picture drawn.
        png = base64.b64decode(page.evaluate("document.getElementById('draw').toDataURL('image/png')")
                               .split(",", 1)[1])
        status, expected = server.post("/api/predict", png)
        assert status == 200
        bars = page.locator("#bars li")
        assert bars.count() == 3
        top = expected["predictions"][0]
        assert bars.first.get_attribute("data-class") == top["class"]
        assert bars.first.locator(".p").inner_text() == f"{100 * top['probability']:.1f}%"

        # Layer 1 is the first Conv2d: open channel 2's map, click output pixel (5, 7).
        page.locator("#layer-1 .maps button").nth(2).click()
        page.locator("#zoom[open]").wait_for()
        click_cell(page, 5, 7)
        page.locator("#detail-sum").wait_for()
        shown_sum, shown_value = number(page, "#detail-sum"), number(page, "#detail-value")
        map_value = page.evaluate("state.result.layers[1].output.data[2 * 144 + 5 * 12 + 7]")
        assert shown_sum == pytest.approx(shown_value, abs=1.5e-4)
        assert shown_value == pytest.approx(map_value, abs=1e-4)
        assert page.locator("#detail-check").inner_text() == "= the map's value"
        # ... and the map's value is numcnn's own for this picture.
        x, _ = server.explainer.read(png)
        assert map_value == pytest.approx(server.explainer.detail(x, 1, 2, 5, 7)["value"], abs=1e-6)

        # Keyboard: one pixel to the right, Enter explains it.
        page.locator("#zoom-map").focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        page.locator("#detail-value").wait_for()
        page.wait_for_function("document.querySelector('#detail .equation').textContent.includes('x 8')")
        assert number(page, "#detail-sum") == pytest.approx(number(page, "#detail-value"), abs=1.5e-4)

        # Max pooling (layer 3): the winner's value is the output.
        page.keyboard.press("Escape")
        page.locator("#layer-3 .maps button").first.click()
        click_cell(page, 1, 1)
        page.locator("#detail-result").wait_for()
        assert number(page, "#detail-result") == pytest.approx(number(page, "#detail-value"), abs=1e-4)
        assert page.locator("td.winner").count() == 1
        assert errors == []


def test_the_page_fits_a_phone_sized_window(server):
    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True)
            page.goto(server.url)
            page.locator("#draw-area").wait_for(state="visible")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page scrolls sideways at phone width ({width} px)"
            assert page.locator("#draw").bounding_box()["width"] <= 390
            # A photo picked with the file chooser: any size, colour, goes through the same path.
            photo = png(np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8))
            page.set_input_files("#file", files=[{"name": "photo.png", "mimeType": "image/png", "buffer": photo}])
            page.locator("body[data-ready='1']").wait_for()
            status, expected = server.post("/api/predict", photo)
            assert page.locator("#bars li").first.get_attribute("data-class") == expected["predictions"][0]["class"]
            assert page.evaluate("[document.getElementById('seen').width, document.getElementById('seen').height]") == [12, 12]
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        finally:
            browser.close()


def screenshots(model, page_png, detail_png, start_png=None):
    """Serve model, and save as PNGs: the page as it opens (start_png, on the model's examples),
    then drawn on, and a conv pixel's detail."""
    from playwright.sync_api import sync_playwright

    live = LiveServer(model)
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1200, "height": 1100}, device_scale_factor=1)
            page.goto(live.url)
            page.locator("#draw-area").wait_for(state="visible")
            if start_png:
                page.locator("body[data-ready='1']").wait_for()
                page.screenshot(path=start_png, full_page=False)
            draw_stroke(page, [(0.38, 0.15), (0.36, 0.5), (0.34, 0.88)])  # two legs: a pair of trousers
            draw_stroke(page, [(0.62, 0.15), (0.64, 0.5), (0.66, 0.88)])
            draw_stroke(page, [(0.36, 0.15), (0.64, 0.15)])
            page.locator("body[data-ready='1']").wait_for()
            page.screenshot(path=page_png, full_page=False)
            page.set_viewport_size({"width": 1200, "height": 1650})  # the whole detail, down to the im2col row
            conv = next(i for i, layer in enumerate(live.explainer.describe()["layers"]) if layer["detail"] == "conv")
            page.locator(f"#layer-{conv} .maps button").nth(3).click()
            click_cell(page, 10, 9)
            page.locator("#detail-sum").wait_for()
            page.screenshot(path=detail_png, full_page=False)
            browser.close()
    finally:
        live.close()


@pytest.fixture(scope="module")
def sample_server(tmp_path_factory):
    from test_serve import sample_model_file

    live = LiveServer(sample_model_file(tmp_path_factory.mktemp("alive")))
    yield live
    live.close()


def test_the_page_starts_alive_on_its_examples_and_a_click_explains_another(sample_server):
    with opened(sample_server) as (page, errors):
        # Nobody draws: the first example is explained on its own, and no box is empty.
        page.locator("body[data-ready='1']").wait_for()
        examples = page.locator("#examples .example")
        assert examples.count() == 10
        assert examples.first.get_attribute("class").split() == ["example", "chosen"]
        assert page.locator("#bars li").count() == 10  # every class, with its probability
        assert page.locator("#layers .maps button").count() > 0
        shown = sample_server.explainer.example_images()
        status, expected = sample_server.post("/api/predict", base64.b64decode(shown[0]["png"]))
        assert status == 200
        assert page.locator("#bars li").first.get_attribute("data-class") == expected["predictions"][0]["class"]

        # A click on the fourth example explains it instead.
        examples.nth(3).click()
        page.wait_for_function("document.querySelectorAll('#examples .chosen')[0].dataset.index === '3' "
                               "&& document.body.dataset.ready === '1'")
        status, expected = sample_server.post("/api/predict", base64.b64decode(shown[3]["png"]))
        page.wait_for_function(f"document.querySelector('#bars li').dataset.class === "
                               f"{expected['predictions'][0]['class']!r}")
        assert errors == []


if __name__ == "__main__":
    screenshots(*sys.argv[1:5])
