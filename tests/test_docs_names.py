"""Every numcnn name the README and the documentation pages mention (``nc.X`` or ``numcnn.X``)
exists: a renamed or removed name breaks this test, not a reader's first try."""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# A dotted name after nc. or numcnn., not inside a quoted string (a metadata key, say).
NAME = re.compile(r'(?<!["\'\w])(?:nc|numcnn)\.([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)')


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


def mentioned():
    for page in PAGES:
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
