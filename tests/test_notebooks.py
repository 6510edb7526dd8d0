"""The teaching notebooks in docs/: kept without outputs, read in a fixed order, linked from the
README, each drawing its ideas and ending with stubs for the learner to fill in, and executed by the
suite itself (pytest's --nbmake runs each one top to bottom, stubs and all)."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "tutorials"
NOTEBOOKS = sorted(DOCS.glob("*.ipynb"))
NUMBERED = re.compile(r"^(\d\d)-[a-z0-9-]+\.ipynb$")


def unstripped(notebook: dict) -> list[str]:
    """What a stripped notebook must not hold: outputs and execution counts, by cell index."""
    problems = []
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {i} has {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i} has execution count {cell['execution_count']}")
    return problems


def test_there_are_six_notebooks_numbered_in_reading_order():
    names = [path.name for path in NOTEBOOKS]
    assert all(NUMBERED.match(name) for name in names), names
    assert [name[:2] for name in names] == [f"{i:02d}" for i in range(1, 7)], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    problems = unstripped(json.loads(path.read_text()))
    assert not problems, (f"{path.name}: {'; '.join(problems[:5])}. Strip it with "
                          f"`jupyter nbconvert --clear-output --inplace docs/tutorials/{path.name}`")


def test_an_executed_notebook_counts_as_unstripped():
    executed = {"cells": [{"cell_type": "markdown", "source": "x"},
                          {"cell_type": "code", "execution_count": 3, "source": "1 + 1",
                           "outputs": [{"output_type": "execute_result", "data": {"text/plain": "2"}}]}]}
    assert unstripped(executed) == ["cell 1 has 1 output(s)", "cell 1 has execution count 3"]


STUB = re.compile(r"raise NotImplementedError|= \.\.\.\s*$|: \.\.\.", re.M)
CHECK = re.compile(r"^teach\.check_\w+\(.*\)$")
FIGURE = re.compile(r"^teach\.(?!check_)\w+\(", re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_states_its_assumptions_draws_its_ideas_and_ends_with_exercises_to_write(path):
    cells = json.loads(path.read_text())["cells"]
    text = lambda cell: "".join(cell["source"])
    assert "**Assumes" in text(cells[0]) or "assumes:**" in text(cells[0]), f"{path.name}: first cell states no assumptions"
    figures = [cell for cell in cells if cell["cell_type"] == "code" and FIGURE.search(text(cell))]
    assert len(figures) >= 2, f"{path.name}: {len(figures)} figures drawn"
    headings = [i for i, cell in enumerate(cells) if cell["cell_type"] == "markdown" and "## Exercises" in text(cell)]
    assert len(headings) == 1, f"{path.name}: {len(headings)} Exercises sections"
    after = cells[headings[-1]:]
    checks = [i for i, cell in enumerate(after) if cell["cell_type"] == "code" and CHECK.match(text(cell).strip())]
    assert 2 <= len(checks) <= 3, f"{path.name}: {len(checks)} exercise checks"
    for i in checks:   # right above each check, the learner's stub: no solution for a reader to see
        stub = after[i - 1]
        assert stub["cell_type"] == "code" and STUB.search(text(stub)), f"{path.name}: no stub above {text(after[i])}"
    assert not any("your answer here" in text(cell) for cell in cells), f"{path.name}: a solved exercise"


def test_a_solved_exercise_is_not_taken_for_a_stub():
    assert STUB.search("def f(x):\n    raise NotImplementedError\n") and STUB.search("padding = ...\n")
    assert STUB.search('answers = {"max_pool": ..., "avg_pool": ...}')
    assert not STUB.search("def out_size(H, FH, P, S):\n    return (H + 2 * P - FH) // S + 1\n")
    assert not STUB.search("padding_for_5x5 = 2")


def test_readme_links_every_notebook_in_reading_order():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/tutorials/\d\d-[a-z0-9-]+\.ipynb)\)", readme)
    assert links == [f"docs/tutorials/{path.name}" for path in NOTEBOOKS]


def test_the_suite_executes_the_notebooks(pytestconfig):
    # `make test` is a bare `python -m pytest`: docs/ must be among its paths and --nbmake on.
    assert "docs" in pytestconfig.getini("testpaths")
    assert pytestconfig.getoption("nbmake", default=False), "pytest runs without --nbmake"
