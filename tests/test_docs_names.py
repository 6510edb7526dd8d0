"""Every numcnn name the README and the documentation pages mention (``nc.X`` or ``numcnn.X``)
exists: a renamed or removed name breaks this test, not a reader's first try. And the API
reference (docs/api.md) covers every module they use, and autodoc can see every name of each
module's ``__all__`` (tests/test_docs_site.py checks the built site's index has each one)."""

import importlib
import inspect
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# A dotted name after nc. or numcnn., not inside a quoted string (a metadata key, say).
NAME = re.compile(r'(?<!["\'\w])(?:nc|numcnn)\.([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)')
# sphinx-argparse directives: the command-line page documents these modules' parsers.
ARGPARSE_MODULE = re.compile(r":module: (numcnn[\w.]*)")


def reference_modules() -> list[str]:
    """The modules the API reference lists (the autosummary block of docs/api.md)."""
    block = (ROOT / "docs" / "api.md").read_text().split(":toctree: generated", 1)[1].split("```", 1)[0]
    return block.split()


def resolve(dotted: str):
    """The object numcnn.<dotted> names, importing submodules on the way; AttributeError if none."""
    obj, path = importlib.import_module("numcnn"), "numcnn"
    for part in dotted.split("."):
        path = f"{path}.{part}"
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:
                obj = importlib.import_module(path)
            except ModuleNotFoundError:
                raise AttributeError(f"{path} does not exist") from None
    return obj


def mentioned(pages=PAGES):
    for page in pages:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            for match in NAME.finditer(line):
                yield f"{page.relative_to(ROOT)}:{number}", match.group(1).rstrip(".")


def test_the_pages_mention_names_at_all():
    names = {name for _, name in mentioned()}
    assert {"Conv2d", "runtime.configure", "functional.reference"} <= names


def test_a_missing_name_is_caught():
    with pytest.raises(AttributeError):
        resolve("allocator_that_never_was.keep")


def test_every_name_the_docs_mention_exists():
    missing = []
    for where, name in mentioned():
        try:
            resolve(name)
        except AttributeError:
            missing.append(f"{where}: numcnn.{name}")
    assert missing == []


def modules_on_the_way(dotted: str):
    """The modules numcnn.<dotted> passes through, by their own names (numcnn.allocator.x: numcnn.runtime)."""
    parts = dotted.split(".")
    for end in range(1, len(parts) + 1):
        try:
            obj = resolve(".".join(parts[:end]))
        except AttributeError:  # a name of the reader's own (a notebook's), past numcnn's
            return
        if inspect.ismodule(obj):
            yield obj.__name__


def hidden_from_autodoc(module) -> list[str]:
    """The names of module.__all__ that dir(module) does not list: autodoc, which walks dir(),
    would leave them out of the reference (a name loaded lazily by a module __getattr__, say)."""
    return [name for name in module.__all__ if name not in dir(module)]


def test_the_reference_lists_every_module_a_reader_is_sent_to():
    listed = reference_modules()
    assert len(listed) == len(set(listed)) and listed[0] == "numcnn"
    import numcnn

    used = {"numcnn"} | {f"numcnn.{name}" for name in numcnn.__all__ if inspect.ismodule(getattr(numcnn, name))}
    # What the reader reads, the reference itself aside: the README, the pages and the tutorials.
    pages = [page for page in PAGES if page.name != "api.md"] + sorted((ROOT / "docs").rglob("*.ipynb"))
    for _, name in mentioned(pages):
        used.update(modules_on_the_way(name))
    on_the_cli_page = {module for page in PAGES for module in ARGPARSE_MODULE.findall(page.read_text())}
    assert {"numcnn.model", "numcnn.init", "numcnn.backend", "numcnn.pretrained"} <= used
    assert sorted(used - set(listed) - on_the_cli_page) == []


def test_every_name_of_a_documented_module_is_one_autodoc_sees():
    hidden, without_all = [], []
    for module_name in reference_modules():
        module = importlib.import_module(module_name)
        if not hasattr(module, "__all__"):
            without_all.append(module_name)
            continue
        assert len(module.__all__) == len(set(module.__all__)), module_name
        hidden += [f"{module_name}.{name}" for name in hidden_from_autodoc(module)]
    assert without_all == [] and hidden == []


def test_a_lazily_loaded_name_hidden_from_dir_is_caught():
    module = types.ModuleType("lazy")
    module.__all__ = ["eager", "later"]
    module.eager = 1
    module.__getattr__ = lambda name: 2 if name == "later" else None
    assert module.later == 2
    assert hidden_from_autodoc(module) == ["later"]


def test_listing_the_lazily_loaded_names_loads_nothing():
    # dir() names them for autodoc; importing the packages, or listing them, must still not pull in
    # the trainer (numcnn.train) or Starlette: that is why they load lazily.
    code = ("import sys, numcnn.distributed, numcnn.serve\n"
            "assert 'DistributedTrainer' in dir(numcnn.distributed) and 'create_app' in dir(numcnn.serve)\n"
            "print(sorted(m for m in ('numcnn.train', 'numcnn.distributed.trainer', 'numcnn.serve.app', 'starlette')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
