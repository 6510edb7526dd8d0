"""The house's structure, read from the source: no import cycle between numcnn's modules, counting
imports made inside functions, and no module importing another module's private name.

Every module's syntax tree is walked (nothing is imported), so an import hidden in a function
counts as much as one at the top."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "numcnn"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``from ... import`` names."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str):
    """(imported module, name or None, line) for every import in module, at any depth; a name
    that is itself a module ("from . import runtime") counts as that module."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = resolve(module, node)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                yield (submodule, None, node.lineno) if submodule in MODULES else (target, alias.name, node.lineno)


def graph() -> dict[str, set[str]]:
    edges = {}
    for module in MODULES:
        edges[module] = set()
        for target, _, _ in imports(module):
            # "import numcnn.x.y" and "from .x import y" both depend on the deepest module named.
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module and target.startswith("numcnn"):
                edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v), on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def parent_package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def test_the_walk_finds_imports_inside_functions_and_a_cycle_when_there_is_one():
    # The checker checks itself on a made-up graph and on a real import inside a function.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert any(target == "numcnn.data" for target, _, _ in imports("numcnn.recipe"))
    inside = [n for n in ast.walk(ast.parse(MODULES["numcnn"].read_text())) if isinstance(n, ast.FunctionDef)]
    assert any(isinstance(node, ast.ImportFrom) for f in inside for node in ast.walk(f))


def test_no_import_cycle_between_numcnns_modules():
    assert cycles(graph()) == []


def test_no_module_imports_a_private_name_of_another_package():
    offenders = []
    for module in MODULES:
        for target, name, line in imports(module):
            if not target.startswith("numcnn") or name is None or not name.startswith("_") or name.startswith("__"):
                continue
            if parent_package(target if target in MODULES else target.rpartition(".")[0]) != parent_package(module):
                offenders.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {name} from {target}")
    assert offenders == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_source_file_is_much_above_500_lines(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= 520, f"{MODULES[module].relative_to(PACKAGE.parent)}: {lines} lines"
