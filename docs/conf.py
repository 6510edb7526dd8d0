"""Sphinx configuration for numcnn's documentation site (``make docs``, into build/docs/html).

Sphinx with pydata-sphinx-theme, MyST and myst-nb: the toolchain of NumPy, SciPy and CuPy's
sites, whose readers are ours. Markdown pages, notebooks executed at build time, and an API
reference generated from the numpydoc docstrings.
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import numcnn  # noqa: E402

project = "numcnn"
author = "the numcnn authors"
copyright = "2026, the numcnn authors"
version = release = numcnn.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
]
exclude_patterns = ["_build", "_templates", "**.ipynb_checkpoints", "conf.py", "generated/pretrained.md"]
templates_path = ["_templates"]
# .rst first: autosummary writes the API pages (into docs/generated, not kept in git) in it.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# Notebooks are stored without outputs and executed when the site is built, so every plot on
# the site comes from the code beside it.
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "description"
autodoc_mock_imports = ["cupy", "torch", "mpi4py", "starlette", "uvicorn", "onnx", "onnxruntime"]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
# Attributes as :ivar:/:vartype: fields of their class, whose types get the treatment below
# (an ``.. attribute::`` directive would parse "ndarray, shape (F, C, KH, KW)" as an annotation).
napoleon_use_ivar = True

html_theme = "pydata_sphinx_theme"
html_title = f"numcnn {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
}
# The site is built offline: no remote fonts, analytics or version switcher.
html_theme_options["icon_links"] = []
os.environ.setdefault("MPLBACKEND", "Agg")

# Docstrings give shapes in numpydoc's form, ``x : ndarray, shape (N, C, H, W)``. Sphinx would
# cross-reference each word of that type as a class ("shape", "N", "C", ...); as a literal the
# shape is shown as written and the field is left alone.
_SHAPE_IN_TYPE = re.compile(r"^(\s*:(?:type|vartype) [\w*]+:.*?|\s*:rtype:.*?)\b(shape \(.*\))")


def _shapes_as_literals(app, what, name, obj, options, lines) -> None:
    lines[:] = [_SHAPE_IN_TYPE.sub(r"\1``\2``", line) for line in lines]


def setup(app):
    # After napoleon (priority 500) has turned the sections into :type: fields.
    app.connect("autodoc-process-docstring", _shapes_as_literals, priority=600)


def _pretrained_page() -> None:
    """docs/generated/pretrained.md: one table per shipped model, from the package's manifest
    (the one owner of those facts), included by guide/pretrained.md."""
    from numcnn import pretrained

    lines = []
    for entry in pretrained.available().values():
        lines += [f"## {entry.name}", "", "| | |", "|---|---|",
                  f"| model | {entry.model}, {entry.parameters:,} parameters |",
                  f"| test accuracy | **{entry.test_accuracy:.2%}** |"]
        lines += [f"| {key} | {str(value).replace('|', '/')} |" for key, value in entry.provenance.items()]
        lines.append("")
    out = Path(__file__).resolve().parent / "generated"
    out.mkdir(exist_ok=True)
    (out / "pretrained.md").write_text("\n".join(lines) or "No pretrained models in this checkout.\n")


_pretrained_page()
