"""The two editions of the teaching notebooks, for the tests that read them: English in
docs/tutorials, Simplified Chinese in docs/zh/tutorials, file for file the same notebooks.
A Chinese notebook missing is a failure that names it, never a skip.
"""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGLISH = ROOT / "docs" / "tutorials"
CHINESE = ROOT / "docs" / "zh" / "tutorials"
# The English notebooks name the edition's notebooks: a Chinese one is missing if it is not there.
NAMES = sorted(path.name for path in ENGLISH.glob("*.ipynb"))

FOLDERS = {"en": ENGLISH, "zh": CHINESE}


def editions() -> list:
    """The two editions, "en" and "zh", as test parameters (their folders: FOLDERS)."""
    return ["en", "zh"]


def notebooks() -> list:
    """Every notebook of both editions as a test parameter ("en/01-...ipynb", "zh/01-...ipynb"),
    the Chinese ones listed whether or not they exist."""
    return [pytest.param(folder / name, id=f"{edition}/{name}") for edition, folder in FOLDERS.items() for name in NAMES]


def edition_of(path: Path) -> str:
    """"en" or "zh": the edition a notebook belongs to."""
    return "zh" if path.parent == CHINESE else "en"


def read(path: Path) -> dict:
    """A notebook's JSON; fails (does not skip) when the notebook is missing."""
    assert path.exists(), (f"{path.relative_to(ROOT)} is missing: every notebook of docs/tutorials needs its "
                           f"Chinese translation, of the same name, in docs/zh/tutorials")
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    return "".join(cell["source"])
