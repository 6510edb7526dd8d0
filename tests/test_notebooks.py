"""The teaching notebooks in docs/, in both editions (English in docs/tutorials, Chinese in
docs/zh/tutorials): kept without outputs, read in a fixed order, linked from the README, each
drawing its ideas and ending with stubs for the learner to fill in, and executed by the suite
itself (pytest's --nbmake runs each one top to bottom, stubs and all). What the Chinese edition
must keep of the English one: tests/test_zh_edition.py."""

import re

import pytest
from editions import FOLDERS, NAMES, ROOT, edition_of, editions, notebooks, read, source

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


@pytest.mark.parametrize("edition", editions())
def test_there_are_six_notebooks_numbered_in_reading_order(edition):
    names = sorted(path.name for path in FOLDERS[edition].glob("*.ipynb"))
    assert all(NUMBERED.match(name) for name in names), names
    assert [name[:2] for name in names] == [f"{i:02d}" for i in range(1, 7)], names


@pytest.mark.parametrize("path", notebooks())
def test_notebook_is_stored_without_outputs(path):
    problems = unstripped(read(path))
    assert not problems, (f"{path.name}: {'; '.join(problems[:5])}. Strip it with "
                          f"`jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)}`")


def test_an_executed_notebook_counts_as_unstripped():
    executed = {"cells": [{"cell_type": "markdown", "source": "x"},
                          {"cell_type": "code", "execution_count": 3, "source": "1 + 1",
                           "outputs": [{"output_type": "execute_result", "data": {"text/plain": "2"}}]}]}
    assert unstripped(executed) == ["cell 1 has 1 output(s)", "cell 1 has execution count 3"]


STUB = re.compile(r"raise NotImplementedError|= \.\.\.\s*$|: \.\.\.", re.M)
CHECK = re.compile(r"^teach\.check_\w+\(.*\)$")
FIGURE = re.compile(r"^teach\.(?!check_)\w+\(", re.M)


# How each edition says what a notebook assumes (in bold, in its first cell), and heads its exercises.
ASSUMES = {"en": re.compile(r"\*\*Assumes|assumes:\*\*"),
           "zh": re.compile(r"\*\*[^*\n]*(?:前提|前置|假设|假定|预备|基础|先学过|已经学过)[^*\n]*\*\*")}
EXERCISES_HEADING = {"en": re.compile(r"^## Exercises\s*$", re.M), "zh": re.compile(r"^## 练习\s*$", re.M)}


@pytest.mark.parametrize("path", notebooks())
def test_notebook_states_its_assumptions_draws_its_ideas_and_ends_with_exercises_to_write(path):
    cells, edition = read(path)["cells"], edition_of(path)
    assert ASSUMES[edition].search(source(cells[0])), f"{path.name}: first cell states no assumptions"
    figures = [cell for cell in cells if cell["cell_type"] == "code" and FIGURE.search(source(cell))]
    assert len(figures) >= 2, f"{path.name}: {len(figures)} figures drawn"
    headings = [i for i, cell in enumerate(cells)
                if cell["cell_type"] == "markdown" and EXERCISES_HEADING[edition].search(source(cell))]
    assert len(headings) == 1, f"{path.name}: {len(headings)} Exercises sections"
    after = cells[headings[-1]:]
    checks = [i for i, cell in enumerate(after) if cell["cell_type"] == "code" and CHECK.match(source(cell).strip())]
    assert 2 <= len(checks) <= 3, f"{path.name}: {len(checks)} exercise checks"
    for i in checks:   # right above each check, the learner's stub: no solution for a reader to see
        stub = after[i - 1]
        assert stub["cell_type"] == "code" and STUB.search(source(stub)), \
            f"{path.name}: no stub above {source(after[i])}"
    assert not any("your answer here" in source(cell) for cell in cells), f"{path.name}: a solved exercise"


def test_a_solved_exercise_is_not_taken_for_a_stub():
    assert STUB.search("def f(x):\n    raise NotImplementedError\n") and STUB.search("padding = ...\n")
    assert STUB.search('answers = {"max_pool": ..., "avg_pool": ...}')
    assert not STUB.search("def out_size(H, FH, P, S):\n    return (H + 2 * P - FH) // S + 1\n")
    assert not STUB.search("padding_for_5x5 = 2")


def test_the_assumptions_and_the_exercises_are_found_in_either_language():
    assert ASSUMES["en"].search("**Reading order:** second of six. **Assumes:** notebook 1")
    assert ASSUMES["zh"].search("**阅读顺序：**第二本。**前提：**第 1 本笔记本")
    assert not ASSUMES["zh"].search("**阅读顺序：**第二本。本笔记本介绍通道与滤波器。")
    assert EXERCISES_HEADING["zh"].search("## 练习\n\n每道练习……")
    assert not EXERCISES_HEADING["zh"].search("### 练习 1：输出大小")


def test_readme_links_every_notebook_in_reading_order():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/tutorials/\d\d-[a-z0-9-]+\.ipynb)\)", readme)
    assert links == [f"docs/tutorials/{name}" for name in NAMES]


def test_readme_links_the_chinese_edition():
    assert "](docs/zh/index.md)" in (ROOT / "README.md").read_text(), "the README links no Chinese edition"


def test_the_suite_executes_the_notebooks(pytestconfig):
    # `make test` is a bare `python -m pytest`: docs/ must be among its paths and --nbmake on.
    assert "docs" in pytestconfig.getini("testpaths")
    assert pytestconfig.getoption("nbmake", default=False), "pytest runs without --nbmake"
