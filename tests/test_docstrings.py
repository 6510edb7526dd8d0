"""The public docstrings are numpydoc that Sphinx (napoleon) renders as written.

A Parameters entry is a line at the section's own indentation; napoleon takes every such line for
a new parameter, so a continuation or shape line that starts at column 0 renders as a bogus
parameter. These tests read each Parameters section the way napoleon does and check it against the
signature: no entry for an argument that does not exist, no entry that is not a name, no shape
written as a type (Sphinx would look up classes "N", "C", ...), and, for the kernels and layers,
every argument documented and an array shape given.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

# Modules whose every public callable must document every argument and give array shapes.
STRICT = ["numcnn.functional", "numcnn.layers"]
# Modules whose documented parameters must exist and be well formed.
CHECKED = STRICT + ["numcnn.model", "numcnn.optim", "numcnn.zoo", "numcnn.recipe", "numcnn.inference",
                    "numcnn.checkpoint", "numcnn.data", "numcnn.gradcheck", "numcnn.interop",
                    "numcnn.functional.reference", "numcnn.train", "numcnn.runtime", "numcnn.rundir",
                    "numcnn.distributed", "numcnn.serve", "numcnn.teach", "numcnn.pretrained", "numcnn.viz",
                    "numcnn.io"]

SECTION_TITLES = {"parameters", "other parameters", "returns", "yields", "raises", "attributes", "methods",
                  "notes", "examples", "see also", "references", "warns", "warnings", "receives"}
PARAMETER_SECTIONS = {"parameters", "other parameters"}
TYPED_SECTIONS = PARAMETER_SECTIONS | {"returns", "yields", "attributes"}
NAME = re.compile(r"\*{0,2}[A-Za-z_]\w*")
# numpydoc's way to give a shape in a type: "ndarray, shape (N, C, H, W)" (docs/conf.py shows it as a literal).
SHAPE_IN_TYPE = re.compile(r"\bshape \(.*\)")
# Quoted values, value sets and literals in a type, which napoleon shows as they are.
LITERALS = re.compile(r'"[^"]*"|\'[^\']*\'|\{[^}]*\}|``[^`]*``')
# Words of a sentence, which a type ("int or pair of int, optional") never holds.
PROSE = re.compile(r"\b(the|a|an|whether|is|are|e\.g|its|this|that|which|where|when|what|how|one|every)\b", re.I)
# A parenthesised, comma-separated shape: (N, C, H, W), (F,), (N, C*KH*KW, OH*OW), (top, bottom, ...).
SHAPE = re.compile(r"\(\s*[\w.*+\-/ ]+,[\w.*+\-/ ,]*\)")


def public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return sorted(name for name, obj in vars(module).items()
                  if not name.startswith("_") and getattr(obj, "__module__", None) == module_name
                  and (inspect.isfunction(obj) or inspect.isclass(obj)))


def sections(doc: str) -> dict[str, list[str]]:
    """Section title (lower case) -> its lines, for a cleaned docstring. A title is a line
    underlined by dashes of the same length or longer."""
    lines = inspect.cleandoc(doc).splitlines()
    found: dict[str, list[str]] = {}
    current = None
    index = 0
    while index < len(lines):
        line = lines[index]
        underline = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if (line.strip().lower() in SECTION_TITLES and underline and set(underline) == {"-"}
                and not line.startswith(" ")):
            current = line.strip().lower()
            found.setdefault(current, [])
            index += 2
            continue
        if current is not None:
            found[current].append(line)
        index += 1
    return found


def entries(section: list[str]) -> list[tuple[str, str]]:
    """(names, type) of each entry: each line at the section's indentation, as napoleon reads it."""
    out = []
    for line in section:
        if not line.strip() or line[0].isspace():
            continue
        names, _, kind = line.partition(" : ") if " : " in line else (line.rstrip(":"), "", "")
        out.append((names.strip(), kind.strip()))
    return out


def documented(doc: str) -> list[tuple[str, str]]:
    found = sections(doc)
    return [entry for title in PARAMETER_SECTIONS for entry in entries(found.get(title, []))]


def signature_names(obj) -> list[str] | None:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    names = []
    for parameter in signature.parameters.values():
        if parameter.name == "self":
            continue
        prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
        names.append(prefix + parameter.name)
    return names


def callables(module_name: str):
    """(qualified name, object, its docstring or '') for each public function, class and public
    method of a class defined in numcnn; a class's docstring documents its __init__."""
    module = importlib.import_module(module_name)
    for name in public_names(module_name):
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if not getattr(obj, "__module__", "").startswith("numcnn"):
            continue
        yield f"{module_name}.{name}", obj, inspect.getdoc(obj) or ""
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not inspect.isfunction(member):
                continue
            yield f"{module_name}.{name}.{attr}", member, inspect.getdoc(getattr(obj, attr)) or ""


def cases(modules):
    seen = set()
    for module_name in modules:
        for qualname, obj, doc in callables(module_name):
            if qualname not in seen:
                seen.add(qualname)
                yield pytest.param(obj, doc, module_name in STRICT, id=qualname)


CASES = list(cases(CHECKED))


def test_the_walk_finds_the_public_api():
    ids = {case.id for case in CASES}
    assert {"numcnn.functional.conv2d_forward", "numcnn.layers.Conv2d", "numcnn.layers.Layer.forward",
            "numcnn.recipe.build_schedule", "numcnn.data.Compose"} <= ids
    assert len(CASES) > 200


@pytest.mark.parametrize("obj, doc, strict", CASES)
def test_parameters_section_matches_the_signature(obj, doc, strict):
    parameters = signature_names(obj)
    if parameters is None:
        pytest.skip("no signature to compare with (a builtin)")
    bare = {name.lstrip("*") for name in parameters}
    problems = []
    named = set()
    for names, kind in documented(doc):
        for name in (part.strip() for part in names.split(",")):
            if not NAME.fullmatch(name):
                problems.append(f"stray line in Parameters (not a parameter name): {names!r}")
                break
            if name.lstrip("*") not in bare:
                problems.append(f"documents {name!r}, which is not in the signature {parameters}")
            named.add(name.lstrip("*"))
    if strict:
        missing = [name for name in parameters if name.lstrip("*") not in named]
        if missing:
            problems.append(f"arguments not in its Parameters section: {missing}")
        if takes_arrays(obj) and not SHAPE.search(shapes_doc(obj, doc)):
            problems.append("gives no array shape")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("obj, doc, strict", CASES)
def test_types_are_numpydoc_types(obj, doc, strict):
    """A parenthesis in a type is only a shape after "shape": napoleon splits any other at its
    commas and Sphinx looks up each piece ("(N", "C", ...) as a class."""
    found = sections(doc)
    bad = []
    for title in TYPED_SECTIONS:
        for names, kind in entries(found.get(title, [])):
            # A Returns entry may be a type alone ("ndarray, shape (N, C, H, W)").
            kind = kind if kind or title not in ("returns", "yields") else names
            words = LITERALS.sub("", SHAPE_IN_TYPE.sub("", kind))
            if "(" in words:
                bad.append(f"{title}: {names!r}: {kind!r}; write 'ndarray, shape (...)' or describe it below")
            elif PROSE.search(words):
                bad.append(f"{title}: {names!r}: a description in the type's place ({kind!r})")
    for title in TYPED_SECTIONS | {"raises"}:
        for names, kind in entries(found.get(title, [])):
            # Prose at the entries' indentation, which napoleon makes an entry of its own.
            if (kind or names).rstrip().endswith(".") or ";" in names + kind:
                bad.append(f"{title}: a sentence read as an entry: {names} {kind}")
    assert not bad, "\n".join(bad)


def takes_arrays(obj) -> bool:
    """Functions, layers and their forward/backward; a layer's other methods (train, to, ...) and
    the class decorator take no arrays."""
    if obj.__name__ == "register_layer":
        return False
    return "." not in obj.__qualname__ or obj.__name__ in ("forward", "backward")


def shapes_doc(obj, doc: str) -> str:
    """Where the shapes are given: a layer's may be in its class docstring or in its forward's."""
    if inspect.isclass(obj) and hasattr(obj, "forward"):
        return doc + (inspect.getdoc(obj.forward) or "")
    return doc


def test_the_parser_reads_sections_as_napoleon_does():
    doc = """Summary.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        The input,
        continued.
    (N, C) -> output
    y, z : int

    Returns
    -------
    ndarray
    """
    assert documented(doc) == [("x", "ndarray, shape (N, C, H, W)"), ("(N, C) -> output", ""), ("y, z", "int")]
    assert list(sections(doc)) == ["parameters", "returns"]
