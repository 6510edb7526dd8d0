"""The Chinese edition in docs/zh/ (issue 29, item 5): the English notebooks translated, and
nothing else changed.

A Chinese notebook has the English one's cells, in the same order, with the same ids and types;
its code is the English code, comments aside, plus the one line that puts the Chinese words in
use; every markdown cell reads as Chinese. The words the figures and checks use cover every
English text, the plots find a font with Chinese glyphs where fonts-noto-cjk is installed, and
the map from the chapter's sections and figures names cells that exist in both editions.
"""

import io
import re
import string
import tokenize
import warnings

import numpy as np
import pytest
from editions import CHINESE, ENGLISH, FOLDERS, NAMES, ROOT, editions, read, source

from numcnn import teach
from numcnn.teach import words

ZH_DOCS = ROOT / "docs" / "zh"
USE_WORDS = "teach.use_words(teach.words.CHINESE, fonts=teach.words.CJK_FONTS)"
IMPORT_TEACH = "from numcnn import teach"


@pytest.fixture(autouse=True)
def english():
    yield
    teach.use_words(None)


# ---------------------------------------------------------------- the notebooks, cell by cell

def code_lines(code: str) -> list[str]:
    """A code cell's lines with comments, trailing spaces and blank lines taken out; strings are
    kept as they are (a '#' inside one is not a comment)."""
    comments = {token.start[0]: token.start[1] for token in tokenize.generate_tokens(io.StringIO(code).readline)
                if token.type == tokenize.COMMENT}
    lines = [line[:comments.get(number, len(line))].rstrip() for number, line in enumerate(code.splitlines(), 1)]
    return [line for line in lines if line]


def expected_code(english: str) -> list[str]:
    """The Chinese cell's code lines: the English ones, with USE_WORDS right after the import of
    teach."""
    lines = code_lines(english)
    if IMPORT_TEACH in lines:
        lines.insert(lines.index(IMPORT_TEACH) + 1, USE_WORDS)
    return lines


CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# What a translation keeps as it is: fenced code, math, code spans, link targets, HTML tags.
KEPT = re.compile(r"```.*?```|\$\$.*?\$\$|\$[^$\n]+\$|`[^`\n]+`|\]\([^)\n]*\)|<[^>\n]+>", re.S)
# Six or more English words in a row: a sentence left untranslated (names and short terms in
# parentheses, such as 步幅（stride） or *Deep Learning from Scratch*, are shorter).
ENGLISH_RUN = re.compile(r"[A-Za-z][\w'’-]*(?:[ \t,;:]+[A-Za-z][\w'’-]*){5,}")


def untranslated(markdown: str) -> str | None:
    """Why a markdown cell does not read as Chinese, or None when it does. A cell with no words
    outside its math, code and links has nothing to translate."""
    prose = KEPT.sub(" ", markdown)
    if not re.search(r"[A-Za-z]{2,}", prose) and not CJK.search(prose):
        return None
    if not CJK.search(prose):
        return "no Chinese in it"
    left = ENGLISH_RUN.search(prose)
    return f"English left in it: {left.group(0)!r}" if left else None


def test_the_translation_rule_tells_chinese_from_english():
    assert untranslated("## Exercises\n\nEach exercise gives you a stub.") == "no Chinese in it"
    assert untranslated("## 练习\n\n每道练习先给出占位代码（stub），把 `raise NotImplementedError` 换成你的答案。") is None
    assert untranslated("$$OH = \\frac{H + 2P - FH}{S} + 1$$") is None
    assert untranslated("## 练习\n\nReplace the stub with your answer, then run the check.").startswith("English left")
    assert untranslated("见《深度学习入门》（*Deep Learning from Scratch*）第 7 章，`padding=\"same\" keeps the size`。") is None
    assert untranslated("# 4. im2col：把卷积变成一次矩阵乘法（GEMM）") is None


def test_code_is_compared_without_comments_but_with_everything_else():
    english = "x = np.pad(x, padding)   # zeros around the border\nprint('# not a comment')\n"
    chinese = "# 四周补 0\nx = np.pad(x, padding)   # 在四周补 0\n\nprint('# not a comment')"
    assert code_lines(chinese) == code_lines(english) == ["x = np.pad(x, padding)", "print('# not a comment')"]
    assert code_lines("x = np.pad(x, padding + 1)\nprint('# not a comment')") != code_lines(english)
    assert expected_code("import numpy as np\nfrom numcnn import teach\n\nrng = 0") == [
        "import numpy as np", IMPORT_TEACH, USE_WORDS, "rng = 0"]


def layout(notebook: dict) -> list[tuple[str, str]]:
    """(id, cell type) of every cell, in order."""
    return [(cell["id"], cell["cell_type"]) for cell in notebook["cells"]]


def test_every_english_notebook_has_its_chinese_translation():
    chinese = sorted(path.name for path in CHINESE.glob("*.ipynb"))
    missing, extra = sorted(set(NAMES) - set(chinese)), sorted(set(chinese) - set(NAMES))
    assert missing == [], f"docs/zh/tutorials lacks the translations of {missing}"
    assert extra == [], f"docs/zh/tutorials has notebooks the English edition does not: {extra}"


@pytest.mark.parametrize("name", NAMES)
def test_the_chinese_notebook_has_the_english_cells_in_the_same_order(name):
    english, chinese = read(ENGLISH / name), read(CHINESE / name)
    assert layout(chinese) == layout(english)
    assert (chinese["metadata"], chinese["nbformat"], chinese["nbformat_minor"]) == \
        (english["metadata"], english["nbformat"], english["nbformat_minor"])


@pytest.mark.parametrize("name", NAMES)
def test_the_chinese_code_is_the_english_code_with_the_chinese_words_in_use(name):
    english = {c["id"]: source(c) for c in read(ENGLISH / name)["cells"] if c["cell_type"] == "code"}
    chinese = {c["id"]: source(c) for c in read(CHINESE / name)["cells"] if c["cell_type"] == "code"}
    differ = [cell for cell in english if code_lines(chinese.get(cell, "")) != expected_code(english[cell])]
    assert differ == [], (f"{name}: code cells {differ} differ from the English ones (beyond comments, and the line "
                          f"`{USE_WORDS}` after `{IMPORT_TEACH}`)")
    assert sum(USE_WORDS in code_lines(code) for code in chinese.values()) == 1


@pytest.mark.parametrize("name", NAMES)
def test_every_markdown_cell_of_the_chinese_notebook_is_translated(name):
    cells = read(CHINESE / name)["cells"]
    problems = [f"{c['id']}: {why}" for c in cells if c["cell_type"] == "markdown" and (why := untranslated(source(c)))]
    assert problems == [], f"{name}: " + "; ".join(problems[:5])


# ---------------------------------------------------------------- the words and the fonts

# Texts that are code or a formula, the same in every language.
CODE_TEXTS = {"dout", "col", "out", "nc.Conv2d", "OH = ({h} + 2·{p} − {k}) // {s} + 1 = {oh}",
              "img[{i}:{i}+{s}·{oh}:{s}, {j}:{j}+{s}·{ow}:{s}]"}


def fields(text: str) -> list:
    """The replacement fields of a format string, with their conversion and format spec."""
    return sorted((name, conversion or "", spec or "") for _, name, spec, conversion in string.Formatter().parse(text)
                  if name is not None)


def test_the_chinese_words_cover_every_english_text_with_the_same_fields():
    assert set(words.CHINESE) == set(words.ENGLISH)
    assert [key for key, text in words.CHINESE.items() if fields(text) != fields(key)] == []
    untranslated_texts = [key for key, text in words.CHINESE.items() if key not in CODE_TEXTS and not CJK.search(text)]
    assert untranslated_texts == []
    assert CODE_TEXTS <= set(words.ENGLISH)


def test_a_text_with_other_fields_is_told_apart():
    assert fields("dense: {dense:,} weights for a {h}×{w} output") == [("dense", "", ","), ("h", "", ""), ("w", "", "")]
    assert fields("全连接：{dense} 个权重，输出 {h}×{w}") != fields("dense: {dense:,} weights for a {h}×{w} output")


def cjk_font() -> str | None:
    """The file of the first of CJK_FONTS that matplotlib finds on this machine, or None."""
    from matplotlib import font_manager

    for family in words.CJK_FONTS:
        try:
            return font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:
            continue
    return None


X = np.arange(16, dtype=np.float64).reshape(4, 4)
K = np.ones((3, 3))


def missing_glyphs(draw) -> list[str]:
    """The "Glyph ... missing from font(s)" warnings matplotlib gives while ``draw`` runs."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw()
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_chinese_labels_draw_in_a_font_that_has_chinese():
    pytest.importorskip("matplotlib", reason="the figures need matplotlib (pip install 'numcnn[train]')")
    if cjk_font() is None:
        pytest.skip(f"none of {words.CJK_FONTS} is installed (apt-get install fonts-noto-cjk): Chinese labels "
                    f"would draw as boxes")
    english = teach.sliding_window(X, K, stride=2, padding=1, step=1).png
    teach.use_words(words.CHINESE, fonts=words.CJK_FONTS)
    pictures = []
    assert missing_glyphs(lambda: pictures.append(teach.sliding_window(X, K, stride=2, padding=1, step=1))) == []
    assert pictures[0].png != english


def test_chinese_labels_in_a_font_without_chinese_are_caught():
    pytest.importorskip("matplotlib", reason="the figures need matplotlib (pip install 'numcnn[train]')")
    teach.use_words(words.CHINESE, fonts=["A Font This Machine Does Not Have"])   # falls back to DejaVu Sans
    missing = missing_glyphs(lambda: teach.sliding_window(X, K, stride=2, padding=1, step=1))
    assert missing and all("DejaVu Sans" in message for message in missing)


# ---------------------------------------------------------------- the pages and the map

def test_the_front_page_lists_the_six_notebooks_the_glossary_and_the_map():
    page = (ZH_DOCS / "index.md").read_text(encoding="utf-8")
    toctrees = "".join(re.findall(r"```\{toctree\}(.*?)```", page, re.S))
    entries = [line.strip() for line in toctrees.splitlines() if line.strip() and not line.startswith(":")]
    assert entries == [f"tutorials/{name.removesuffix('.ipynb')}" for name in NAMES] + ["glossary", "map"]
    assert "](../tutorials/index.md)" in page and "numcnn serve --pretrained fashion-net" in page
    assert "pip install 'numcnn[train]'" in page and "docs/tutorials/solutions/" in page
    assert "zh/index" in (ROOT / "docs" / "index.md").read_text()
    assert "](../zh/index.md)" in (ROOT / "docs" / "tutorials" / "index.md").read_text(encoding="utf-8")


MAP = ZH_DOCS / "map.md"
CELL = re.compile(r"`(nb(\d\d)-(\d\d))`")
SPAN = re.compile(r"`(nb(\d\d)-(\d\d))`…`(nb(\d\d)-(\d\d))`")
LINK = {"zh": re.compile(r"\]\(tutorials/(\d\d)-[a-z0-9-]+\.ipynb\)"),
        "en": re.compile(r"\]\(\.\./tutorials/(\d\d)-[a-z0-9-]+\.ipynb\)")}


def map_rows() -> list[str]:
    """The table rows of the map that name cells."""
    return [line for line in MAP.read_text(encoding="utf-8").splitlines() if line.startswith("|") and CELL.search(line)]


def test_the_map_names_every_figure_of_the_chapter_and_every_notebook():
    rows = map_rows()
    figures = {int(n) for row in rows for n in re.findall(r"图 3_(\d+)", row)}
    assert figures == set(range(1, 13))
    assert {number for row in rows for _, number, _ in CELL.findall(row)} == {name[:2] for name in NAMES}


def test_each_span_of_the_map_runs_forward_within_one_notebook():
    spans = [match.groups() for row in map_rows() for match in SPAN.finditer(row)]
    assert len(spans) > 30
    backwards = [(first, last) for first, nb, a, last, nb2, b in spans if nb != nb2 or int(a) >= int(b)]
    assert backwards == []


def test_each_row_of_the_map_links_the_notebook_of_its_cells_in_both_editions():
    for row in map_rows():
        notebooks = {number for _, number, _ in CELL.findall(row)}
        for edition, link in LINK.items():
            assert set(link.findall(row)) == notebooks, f"{edition} links of: {row[:80]}"
        for number in notebooks:
            assert any(name.startswith(number) and f"tutorials/{name})" in row for name in NAMES), row[:80]


@pytest.mark.parametrize("edition", editions())
def test_every_cell_the_map_names_is_in_that_notebook_of_the_edition_and_is_numbered_by_its_place(edition):
    ids = {name[:2]: [cell["id"] for cell in read(FOLDERS[edition] / name)["cells"]] for name in NAMES}
    named = {(cell, number) for row in map_rows() for cell, number, _ in CELL.findall(row)}
    assert sorted(cell for cell, number in named if cell not in ids[number]) == []
    # The map tells readers that nb01-14 is cell 14 of notebook 1, counted from 0.
    misplaced = [f"{number}: {cell} at {place}" for number, cells in ids.items()
                 for place, cell in enumerate(cells) if cell != f"nb{number}-{place:02d}"]
    assert misplaced == [], "renumber the ids, or change what docs/zh/map.md says about them"
