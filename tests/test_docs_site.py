"""The documentation site, built as `make docs` builds it (warnings are errors), then read in
headless Chromium (Debian's ``chromium``, driven by Playwright) as a visitor would: the home
page, a tutorial's plot rendered from its executed output, the API entry of conv2d_forward, the
command-line page generated from the parser, a search for im2col, and the Chinese edition's
front page with its notebooks, glossary and map. And the site's index (objects.inv) has one entry
for every public name of every module of the API reference, which numcnn's own page links to."""

import importlib
import inspect
import posixpath
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from editions import NAMES
from test_docs_names import reference_modules

pytest.importorskip("sphinx", reason="the docs need the docs extra: pip install 'numcnn[docs]'")
playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser check needs Playwright")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no Chromium to drive: apt-get install -y chromium (Playwright's own browser download is "
                "not reachable here)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built from this checkout into a temporary folder, with warnings as errors."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           "-d", str(out / ".doctrees"), str(ROOT / "docs"), str(out / "html")],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "html"


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_page(browser, path: Path):
    page = browser.new_page()
    page.goto(path.as_uri())
    return page


def test_the_home_page_renders_with_its_navigation(site, browser):
    page = open_page(browser, site / "index.html")
    assert "numcnn" in page.title()
    for link in ("Getting started", "Tutorials", "API reference", "The command line", "Performance"):
        assert page.get_by_role("link", name=link).first.is_visible(), link


def test_a_tutorial_shows_a_plot_from_its_executed_output(site, browser):
    page = open_page(browser, site / "tutorials" / "05-backward.html")
    images = page.locator("div.cell_output img")
    assert images.count() >= 1
    box = images.first.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 50
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", images.first.element_handle())


def test_the_api_page_documents_conv2d_forward_with_its_shapes(site, browser):
    page = open_page(browser, site / "generated" / "numcnn.functional.html")
    entry = page.locator("dt#numcnn\\.functional\\.conv2d_forward")
    assert entry.count() == 1 and entry.is_visible()
    text = page.locator("dt#numcnn\\.functional\\.conv2d_forward + dd").inner_text()
    assert "(N, C, H, W)" in text and "Parameters" in text


def test_the_command_line_page_lists_every_subcommand(site, browser):
    from numcnn.cli import build_parser

    page = open_page(browser, site / "guide" / "cli.html")
    text = page.locator("main").inner_text()
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for name in commands:
        assert f"numcnn {name}" in text, name
    assert "--val-fraction" in text and "--resume" in text


def test_search_finds_im2col(site, browser):
    page = open_page(browser, site / "search.html")
    page.goto((site / "search.html").as_uri() + "?q=im2col")
    results = page.locator("#search-results li")
    results.first.wait_for(timeout=30000)
    assert results.count() >= 2
    assert any("im2col" in results.nth(i).inner_text().lower() for i in range(results.count()))


def test_the_chinese_edition_lists_its_notebooks_and_shows_their_plots(site, browser):
    page = open_page(browser, site / "index.html")
    assert page.get_by_role("link", name="中文版：用 NumPy 手写卷积与池化").first.is_visible()
    page = open_page(browser, site / "zh" / "index.html")
    for name in NAMES:
        assert page.locator(f"main a[href='tutorials/{name.removesuffix('.ipynb')}.html']").count() >= 1, name
    for link in ("中英术语表", "章节对照表"):
        assert page.get_by_role("link", name=link).first.is_visible(), link
    page = open_page(browser, site / "zh" / "tutorials" / "03-pooling.html")
    images = page.locator("div.cell_output img")
    assert images.count() >= 3
    box = images.first.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 50


def index_of(site: Path) -> dict[str, str]:
    """The Python names the built site indexes (its objects.inv), each with the address of its entry."""
    from sphinx.util.inventory import InventoryFile

    with open(site / "objects.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "", posixpath.join)
    # Sphinx 9 gives each item a uri; earlier versions, a (project, version, uri, title) tuple.
    return {name: getattr(item, "uri", None) or item[2] for kind, entries in inventory.items()
            if kind.startswith("py:") for name, item in entries.items()}


def entries_of(module_name: str, name: str, modules: dict) -> set[str]:
    """Where the reference may index module_name's name: under that module, or under another page's
    module that holds the same object (the one that defines it); for a submodule, its own page."""
    value = getattr(modules[module_name], name)
    if inspect.ismodule(value):
        return {value.__name__}
    return {f"{other}.{name}" for other, module in modules.items() if getattr(module, name, None) is value}


def test_every_public_name_has_exactly_one_entry_in_the_index(site):
    index = index_of(site)
    modules = {name: importlib.import_module(name) for name in reference_modules()}
    wrong = [f"{module_name}: no page" for module_name in modules if module_name not in index]
    for module_name, module in modules.items():
        for name in module.__all__:
            found = sorted(entries_of(module_name, name, modules) & index.keys())
            if len(found) != 1:
                wrong.append(f"{module_name}.{name}: {found or 'no entry'}")
    assert len(index) > 300 and wrong == []


def test_the_numcnn_page_links_to_the_entry_of_every_name_it_exports(site):
    import numcnn

    index = index_of(site)
    modules = {name: importlib.import_module(name) for name in reference_modules()}
    page = (site / "generated" / "numcnn.html").read_text()
    unlinked = []
    for name in numcnn.__all__:
        anchors = [index[entry].split("#")[1] for entry in entries_of("numcnn", name, modules) & index.keys()]
        if not any(f'#{anchor}"' in page or f'id="{anchor}"' in page for anchor in anchors):
            unlinked.append(name)
    assert unlinked == []
