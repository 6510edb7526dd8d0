"""Sphinx configuration for numcnn's documentation site (``make docs``, into build/docs/html).

Sphinx with pydata-sphinx-theme, MyST and myst-nb: the toolchain of NumPy, SciPy and CuPy's
sites, whose readers are ours. Markdown pages, notebooks executed at build time, and an API
reference generated from the numpydoc docstrings.
"""

import importlib
import inspect
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import numcnn  # noqa: E402
from sphinx.ext.autodoc.mock import mock  # noqa: E402

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
autodoc_default_options = {"show-inheritance": False}  # the template lists each page's members
autodoc_typehints = "description"
autodoc_mock_imports = ["cupy", "torch", "mpi4py", "starlette", "uvicorn", "onnx", "onnxruntime"]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
# Attributes as :ivar:/:vartype: fields of their class, whose types get the treatment below
# (an ``.. attribute::`` directive would parse "ndarray, shape (F, C, KH, KW)" as an annotation).
napoleon_use_ivar = True


def _api_modules() -> list[str]:
    """The modules docs/api.md lists (its autosummary block): the one list of what the reference covers."""
    text = (Path(__file__).resolve().parent / "api.md").read_text()
    block = text.split(":toctree: generated", 1)[1].split("```", 1)[0]
    return block.split()


def _home(name: str, value, modules: list[str]) -> str | None:
    """The documented module whose page holds value's entry: the nearest page, walking up from the
    module that defines it, that exports it under this name; None for a value of no such module
    (a constant, a module, a name whose defining module has no page of its own)."""
    parts = (getattr(value, "__module__", None) or "").split(".")
    while parts:
        module = ".".join(parts)
        if module in modules and value is getattr(importlib.import_module(module), name, None):
            return module
        parts.pop()
    return None


def _api_pages() -> dict[str, dict[str, list]]:
    """For each module of the reference, what its page holds, so that every name of its __all__
    has exactly one entry, on the page of the module that defines it: "members" (its classes and
    functions), "constants" (name, whether to show the value) and "links" (the full names of what
    it re-exports from another page).

    The names a package loads lazily are resolved here, with the extras the docs environment may
    lack mocked as autodoc mocks them (they are then imported, so autodoc finds them)."""
    modules = _api_modules()
    pages = {}
    with mock(autodoc_mock_imports):
        for module_name in modules:
            module = importlib.import_module(module_name)
            page = pages[module_name] = {"members": [], "constants": [], "links": []}
            for name in module.__all__:
                value = getattr(module, name)
                if inspect.ismodule(value) and value.__name__ in modules:
                    page["links"].append(value.__name__)
                elif inspect.isclass(value) or callable(value):
                    home = _home(name, value, modules)
                    if home in (None, module_name):
                        page["members"].append(name)
                    else:
                        page["links"].append(f"{home}.{name}")
                else:  # autodoc documents a constant only with a doc comment: the template names it
                    page["constants"].append((name, _short_value(value)))
    return pages


def _short_value(value) -> bool:
    """Whether a constant's value belongs on its entry: a string, a number, or a tuple of them
    (a registry's classes or a path on the building machine do not)."""
    plain = (str, int, float, bool)
    return isinstance(value, plain) or (isinstance(value, tuple) and all(isinstance(v, plain) for v in value))


def _no_docstring_of_the_type(app, what, name, obj, options, lines):
    """A constant without a doc comment would show its type's docstring (str's, dict's): none instead."""
    if what == "data" and "\n".join(lines).strip() == inspect.cleandoc(type(obj).__doc__ or ""):
        lines.clear()


def _keep_every_listed_name(app, what, name, obj, skip, options):
    """A module's page lists each name the template gives it, with a docstring or not."""
    return False if what == "module" else None


autosummary_context = {"api_pages": _api_pages()}

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

# Docstrings give shapes in numpydoc's form, ``x : ndarray, shape (N, C, H, W)``, and types in
# its words ("int or pair of int, default 1", "ndarray, optional"). napoleon_preprocess_types
# reads the words (optional and default as such, quoted values as literals), but it would split
# a shape at its commas and look up classes "shape (N", "C", ... So each shape is set aside
# before napoleon reads the docstring and put back, as a literal, after.
napoleon_preprocess_types = True
# The words of numpydoc types that are no class of ours; with nitpicky builds (-n) they would
# be reported as missing targets. (The site is built offline, so no intersphinx for NumPy's.)
nitpick_ignore = [("py:class", word) for word in (
    "ndarray", "array_like", "scalar", "dtype", "float32", "pair", "4-tuple", "callable", "iterable",
    "sequence", "path", "module", "object", "type")] + [("py:obj", "True"), ("py:obj", "False")]
_SHAPE = re.compile(r"\bshape (\(.*\))")
_PLACEHOLDER = re.compile(r"(?::(?:py:)?class:`)?NUMCNNSHAPE(\d+)`?")


_shapes: list[str] = []  # of the docstring being processed


def _set_shapes_aside(app, what, name, obj, options, lines) -> None:
    def aside(match):
        _shapes.append(match.group(0))
        return f"NUMCNNSHAPE{len(_shapes) - 1}"
    _shapes.clear()
    lines[:] = [_SHAPE.sub(aside, line) for line in lines]


def _put_shapes_back(app, what, name, obj, options, lines) -> None:
    shapes = _shapes
    lines[:] = [_PLACEHOLDER.sub(lambda m: f"``{shapes[int(m.group(1))]}``", line) for line in lines]


def setup(app):
    # Napoleon reads the docstring at priority 500: a constant's type's docstring goes before it,
    # and the shapes are set aside around it.
    app.connect("autodoc-process-docstring", _no_docstring_of_the_type, priority=100)
    app.connect("autodoc-process-docstring", _set_shapes_aside, priority=400)
    app.connect("autodoc-process-docstring", _put_shapes_back, priority=600)
    app.connect("autodoc-skip-member", _keep_every_listed_name)


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
