"""numcnn serve in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

It draws a stroke, reads the prediction, opens a conv layer's map, clicks an output pixel and
checks that the sum the page shows equals the map's value, and that both are numcnn's.

Run as a script, it takes the docs' screenshots of a trained model instead:

    python tests/test_serve_browser.py runs/demo docs/serve-page.png docs/serve-detail.png
    python tests/test_serve_browser.py --pretrained fashion-net docs/serve-block.png docs/serve-receptive.png \
        docs/serve-playground.png
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
            page.locator("#receptive-extent").wait_for()
            page.locator("#zoom").screenshot(path=detail_png)  # the dialog alone
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


# -- a pretrained residual net: the page alive from the command line, blocks, receptive field, playground --
@pytest.fixture(scope="module")
def fashion_server():
    from numcnn import pretrained

    live = LiveServer(str(pretrained.model_path("fashion-net")), examples=pretrained.examples("fashion-net"))
    yield live
    live.close()


def test_numcnn_serve_pretrained_starts_alive_with_no_box_empty():
    """`numcnn serve --pretrained fashion-net`, as a user types it: the page opens on the shipped
    examples, the first explained, every panel filled, the playground included."""
    import os
    import subprocess

    from numcnn import pretrained

    process = subprocess.Popen([sys.executable, "-m", "numcnn", "serve", "--pretrained", "fashion-net", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = process.stdout.readline().rsplit(" at ", 1)[1].strip()
        with opened(type("Server", (), {"url": url})) as (page, errors):
            page.locator("body[data-ready='1']").wait_for()
            page.locator("body[data-playground='1']").wait_for()
            assert page.locator("#examples .example").count() == 10
            assert page.locator("#examples .chosen").get_attribute("data-index") == "0"
            assert page.locator("#bars li").count() == 10
            x, y = pretrained.examples("fashion-net")
            names = page.evaluate("state.model.classes")
            assert page.locator("#bars li").first.get_attribute("data-class") == names[int(y[0])]  # it is right
            assert page.locator("#layers .layer").count() >= 19 and page.locator("details.block").count() == 2
            assert page.evaluate("document.getElementById('seen').width") == 28
            assert page.locator("#pg-out-size").inner_text() == "14 x 14"  # K 3, P 1, S 2 on 28: (28+2-2-1)//2+1
            assert page.evaluate("document.getElementById('pg-output').width") > 1
            assert errors == []
    finally:
        process.terminate()
        process.communicate(timeout=60)


def open_block_layer(page, block: str, path: str, channel: int, y: int, x: int):
    """Open block's box, enlarge channel of the layer at path inside it, and pick pixel (y, x)."""
    page.locator(f"#layer-{block} > details.block > summary").click()
    page.locator(f"#layer-{path.replace('.', '-')} > .maps button").nth(channel).click()
    page.locator("#zoom[open]").wait_for()
    click_cell(page, y, x)


def test_a_conv_inside_a_residual_block_is_explained_down_to_its_sum(fashion_server):
    with opened(fashion_server) as (page, errors):
        page.locator("body[data-ready='1']").wait_for()
        open_block_layer(page, "3", "3.3", 5, 9, 14)
        page.locator("#detail-sum").wait_for()
        assert page.locator("#zoom-title").inner_text().startswith("Layer 3.3 · Conv2d 32@3x3")
        shown_sum, shown_value = number(page, "#detail-sum"), number(page, "#detail-value")
        map_value = page.evaluate("state.entries['3.3'].output.data[5 * 784 + 9 * 28 + 14]")
        assert shown_sum == pytest.approx(shown_value, abs=1.5e-4) and shown_value == pytest.approx(map_value, abs=1e-4)
        assert page.locator("#detail-check").inner_text() == "= the map's value"
        assert page.locator("#detail .channel-box").count() == 32  # every input channel of the conv
        image = base64.b64decode(fashion_server.explainer.example_images()[0]["png"])
        x, _ = fashion_server.explainer.read(image)
        assert map_value == pytest.approx(fashion_server.explainer.detail(x, "3.3", 5, 9, 14)["value"], abs=1e-6)
        # The block's own sum at that pixel: body (3.4) plus the identity skip (layer 2).
        page.keyboard.press("Escape")
        page.locator("#layer-3 > .maps button").nth(5).click()
        click_cell(page, 9, 14)
        page.locator("#residual-body").wait_for()
        body, skip = number(page, "#residual-body"), number(page, "#residual-skip")
        assert number(page, "#detail-sum") == pytest.approx(body + skip, abs=2e-4)
        assert page.locator("#detail-check").inner_text() == "= the map's value"
        assert body == pytest.approx(page.evaluate("state.entries['3.4'].output.data[5 * 784 + 9 * 28 + 14]"), abs=1e-4)
        assert errors == []


def test_the_receptive_field_is_drawn_on_the_input_with_its_size(fashion_server):
    with opened(fashion_server) as (page, errors):
        page.locator("body[data-ready='1']").wait_for()
        # Three 3x3 convs (padding 1) from the image to 3.3: 1 + 3 * 2 = 7 pixels a side.
        open_block_layer(page, "3", "3.3", 0, 12, 20)
        page.locator("#receptive-extent").wait_for()
        assert page.locator("#receptive-extent").inner_text() == "7 x 7"
        assert page.locator("#receptive-map").get_attribute("data-rows") == f"{12 - 3},{12 + 3}"
        assert page.locator("#receptive-map").get_attribute("data-cols") == f"{20 - 3},{20 + 3}"
        # After a 2x2 max pool: output row 3 reads rows 6-7, and the three convs add 3 on each side.
        page.keyboard.press("Escape")
        page.locator("#layer-5 > .maps button").first.click()
        click_cell(page, 3, 0)
        page.wait_for_function("document.getElementById('receptive-map').dataset.rows === '3,10'")
        assert page.locator("#receptive-map").get_attribute("data-cols") == "0,4"  # column -3 is padding
        assert page.locator("#receptive-extent").inner_text() == "8 x 5"
        assert page.locator("#receptive-trace-body tr").count() == 1 + 6  # header, then 5, 4, 3, 2, 1, 0
        assert errors == []


def set_playground(page, kernel, padding, stride, dilation):
    """Type the settings into the playground and wait for the server's answer to them."""
    for name, value in (("kernel", kernel), ("padding", padding), ("stride", stride), ("dilation", dilation)):
        page.fill(f"#pg-{name}", str(value))
    page.wait_for_function(
        "([k, p, s, d]) => document.body.dataset.playground === '1' && pg.answer && pg.answer.settings.kernel === k "
        "&& pg.answer.settings.padding === p && pg.answer.settings.stride === s && pg.answer.settings.dilation === d",
        arg=[kernel, padding, stride, dilation])


def test_the_playground_works_out_the_output_size_and_explains_what_cannot_be(fashion_server):
    with opened(fashion_server) as (page, errors):
        page.locator("body[data-ready='1']").wait_for()
        page.locator("body[data-playground='1']").wait_for()
        for kernel, padding, stride, dilation in ((5, 1, 2, 2), (4, 2, 3, 1), (2, 1, 5, 3)):
            set_playground(page, kernel, padding, stride, dilation)
            expected = (28 + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
            assert page.locator("#pg-out-size").inner_text() == f"{expected} x {expected}"
            assert number(page, "#pg-oh") == expected
            canvas = page.locator("#pg-output")
            assert canvas.evaluate("c => c.width / Number(c.dataset.cell)") == expected
            assert page.locator("#pg-invalid").is_hidden()
        # Impossible settings are explained, with the formula still worked out.
        for settings, message in (((15, 0, 1, 2), "No window fits"), ((3, 3, 1, 1), "padding P = 3 is more than")):
            set_playground(page, *settings)
            assert page.locator("#pg-invalid").is_visible() and message in page.locator("#pg-invalid").inner_text()
            assert page.locator("#pg-output").evaluate("c => c.width") == 1  # no output drawn
        # Padding 3 on a 3x3 kernel: the size exists, (28 + 6 - 2 - 1) // 1 + 1, but its edge windows read nothing.
        assert page.locator("#pg-out-size").inner_text() == "32 x 32"
        page.fill("#pg-kernel", "")
        page.locator("#pg-invalid", has_text="kernel must be an integer").wait_for()
        # From a conv layer's detail: its settings and its input.
        page.fill("#pg-kernel", "3")
        page.locator("#layer-6 > .maps button").first.click()
        click_cell(page, 4, 4)
        page.locator("#to-playground").click()
        page.wait_for_function("document.getElementById('pg-source').textContent.includes('layer 6')")
        page.locator("body[data-playground='1']").wait_for()
        assert [page.input_value(f"#pg-{name}") for name in ("kernel", "padding", "stride", "dilation")] == \
            ["3", "1", "1", "1"]
        assert page.locator("#pg-out-size").inner_text() == "14 x 14"
        assert errors == []


def block_screenshots(name, block_png, receptive_png, playground_png):
    """Serve pretrained model name, and save as PNGs: the batch norm inside its first residual
    block explained, a pixel of the second block's last conv with its receptive field traced
    through every layer, and the conv arithmetic playground."""
    from playwright.sync_api import sync_playwright

    from numcnn import pretrained

    live = LiveServer(str(pretrained.model_path(name)), examples=pretrained.examples(name))
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1000, "height": 820}, device_scale_factor=1)
            page.goto(live.url)
            page.locator("body[data-ready='1']").wait_for()
            page.locator("#examples .example").nth(9).click()  # an ankle boot
            page.wait_for_function("document.querySelector('#examples .chosen').dataset.index === '9' "
                                   "&& document.body.dataset.ready === '1'")
            open_block_layer(page, "3", "3.1", 4, 14, 12)
            page.locator("#detail-result").wait_for()
            page.locator("#receptive-extent").wait_for()
            page.locator("#zoom").screenshot(path=block_png)
            page.keyboard.press("Escape")
            open_block_layer(page, "9", "9.3", 4, 6, 7)
            page.locator("#receptive-extent").wait_for()
            page.locator("#receptive-trace > summary").click()
            box = page.locator("#zoom").bounding_box()
            trace = page.locator("#receptive-trace").bounding_box()
            page.screenshot(path=receptive_png, clip={"x": box["x"], "y": box["y"], "width": box["width"],
                                                      "height": trace["y"] + trace["height"] - box["y"] + 12})
            page.keyboard.press("Escape")
            page.locator("#playground-panel").scroll_into_view_if_needed()
            set_playground(page, 3, 1, 2, 2)
            page.locator("#pg-output").click(position={"x": 40, "y": 40})
            page.locator("#playground-panel").screenshot(path=playground_png)
            browser.close()
    finally:
        live.close()


if __name__ == "__main__":
    if sys.argv[1] == "--pretrained":
        block_screenshots(*sys.argv[2:6])
    else:
        screenshots(*sys.argv[1:5])
