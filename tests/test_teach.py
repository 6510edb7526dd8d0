"""numcnn.teach: every teaching figure draws a PNG from small arrays, its words can be swapped for a
translation (and only for texts it has), the textbook bridge feeds nc.gradcheck, and a forbidden
function is put back whatever happens. The exercises themselves: tests/test_exercises.py."""

import re
from pathlib import Path

import numpy as np
import pytest

import numcnn as nc
import numcnn.functional as F
from numcnn import teach
from numcnn.errors import ConfigError
from numcnn.teach import words

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]
X = np.array([[1, 2, 0, 1], [3, 0, 2, 4], [1, 5, 3, 0], [2, 2, 1, 6]], dtype=np.float64)
K = np.array([[2, 0, 1], [0, 1, 2], [1, 0, 2]], dtype=np.float64)


@pytest.fixture(autouse=True)
def english():
    yield
    teach.use_words(None)


@pytest.fixture(scope="module")
def model():
    return nc.zoo.pretrained("simple-convnet")


FIGURES = {
    "why_convolution": lambda m: teach.why_convolution(size=5, kernel_size=3, outputs=((0, 0), (2, 1))),
    "sliding_window": lambda m: teach.sliding_window(X, K, stride=2, padding=1, step=1),
    "receptive_field": lambda m: teach.receptive_field(kernel_size=3, layers=2),
    "kernel_responses": lambda m: teach.kernel_responses(np.eye(8), {"vertical edges": K, "mine": K.T}),
    "channel_sum": lambda m: teach.channel_sum(np.stack([X, X.T]), np.stack([K, -K]), bias=1.0),
    "conv_blocks": lambda m: teach.conv_blocks((3, 32, 32), 16, 3, padding=1, groups=1),
    "network": lambda m: teach.network(m),
    "pooling": lambda m: teach.pooling(X, 2, dout=np.ones((2, 2))),
    "pooling_average": lambda m: teach.pooling(X, 3, stride=1, dout=np.ones((2, 2)), mode="average"),
    "corner_windows": lambda m: teach.corner_windows(),
    "shift_tolerance": lambda m: teach.shift_tolerance(np.kron(X, np.ones((2, 2)))),
    "im2col_matrix": lambda m: teach.im2col_matrix((2, 3, 3), 2, row=1),
    "im2col_matrix_max": lambda m: teach.im2col_matrix((4, 4), 2, stride=2, values=X, mark_max=True),
    "im2col_taps": lambda m: teach.im2col_taps((5, 5), 3, stride=2, padding=1),
    "gemm": lambda m: teach.gemm((2, 3, 7, 6), 5, 3, padding=1),
    "count_map": lambda m: teach.count_map((7, 7), 3, stride=2, windows=(0, 8)),
    "full_convolution": lambda m: teach.full_convolution(X[:2, :2], K),
    "filters_and_maps": lambda m: teach.filters_and_maps(m, np.zeros((1, 28, 28), np.float32), count=4, name="zeros"),
}


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_is_a_png_a_notebook_can_show_and_a_file_can_hold(name, model, tmp_path):
    picture = FIGURES[name](model)
    assert isinstance(picture, teach.Picture)
    png = picture._repr_png_()
    assert png.startswith(PNG_MAGIC) and picture.size[0] > 50 and picture.size[1] > 50
    assert picture.save(tmp_path / "sub" / "figure.png").read_bytes() == png


def _numbers(picture, count, start=0):
    """The numbers a figure drew, in drawing order, from the start-th number on."""
    found = [float(text) for text in picture.texts if text.lstrip("-").replace(".", "", 1).isdigit()]
    return found[start:start + count]


def test_the_sliding_window_draws_the_output_a_loop_computes_and_the_formula():
    x, k = np.arange(16.0).reshape(4, 4), np.array([[1.0, 0, 2], [0, 1, 0], [3, 0, 1]])
    padded = np.pad(x, 1)
    expected = [float((padded[r:r + 3, c:c + 3] * k).sum()) for r in (0, 2) for c in (0, 2)]  # stride 2
    picture = teach.sliding_window(x, k, padding=1, stride=2)
    cells = 6 * 6 + 9                                   # the padded input's numbers, then the kernel's
    assert _numbers(picture, 4, start=cells) == expected
    assert "OH = (4 + 2·1 − 3) // 2 + 1 = 2" in picture.texts


def test_the_pooling_figure_draws_the_winners_and_where_the_gradient_goes():
    x = np.array([[1.0, 9, 2, 0], [3, 4, 8, 5], [7, 0, 1, 1], [2, 6, 0, 3]])
    picture = teach.pooling(x, 2, dout=np.ones((2, 2)))
    assert _numbers(picture, 4, start=16) == [9.0, 8.0, 7.0, 3.0]  # each 2x2 window's largest
    dx = np.array(_numbers(picture, 16, start=24)).reshape(4, 4)
    assert np.argwhere(dx == 1).tolist() == [[0, 1], [1, 2], [2, 0], [3, 3]]


def test_the_count_map_draws_how_many_windows_read_each_pixel():
    counts = np.zeros((5, 5))
    for r in range(0, 4, 2):                            # 2x2 windows, stride 2: the last row is never read
        for c in range(0, 4, 2):
            counts[r:r + 2, c:c + 2] += 1
    picture = teach.count_map((5, 5), 2, stride=2)
    assert _numbers(picture, 25) == counts.ravel().tolist()


@pytest.mark.filterwarnings("ignore:Glyph")   # where no CJK font is installed: boxes, and a warning
def test_a_translation_changes_the_words_a_figure_draws():
    teach.use_words(words.CHINESE, fonts=words.CJK_FONTS)
    texts = teach.sliding_window(np.ones((4, 4)), np.ones((3, 3)), padding=1).texts
    assert "填充后的输入" in texts and "padded input" not in texts


def test_the_figure_set_is_the_public_one():
    listed = {name.split("_max")[0].split("_average")[0] for name in FIGURES}
    drawn = set(teach.__all__) - {"Picture", "Verdict", "ExerciseError", "forbidding", "use_words",
                                  "TextbookLayer", "textbook_params"}
    assert listed == {name for name in drawn if not name.startswith("check_")}


def test_a_translation_changes_the_words_drawn_and_printed_and_english_comes_back():
    english = teach.sliding_window(X, K).png
    teach.use_words({"input": "Eingabe", "{exercise}: correct": "{exercise}: richtig"})
    assert teach.sliding_window(X, K).png != english
    assert repr(teach.check_padding(2)) == "exercise 2 (padding): richtig"
    teach.use_words(None)
    assert teach.sliding_window(X, K).png == english
    assert repr(teach.check_padding(2)) == "exercise 2 (padding): correct"


def test_a_translation_with_a_text_the_figures_do_not_use_is_refused():
    with pytest.raises(ConfigError, match="inputt"):
        teach.use_words({"inputt": "x"})
    with pytest.raises(ConfigError, match="ENGLISH"):
        words.say("a text nobody registered")


@pytest.mark.filterwarnings("ignore:Glyph")   # the fallback font has no Chinese: boxes, and a warning
def test_a_missing_font_falls_back_without_failing():
    teach.use_words({"input": "输入", "kernel": "卷积核"}, fonts=["A Font This Machine Does Not Have"])
    assert teach.sliding_window(X, K).png.startswith(PNG_MAGIC)


def test_fonts_this_machine_lacks_are_not_named_to_matplotlib():
    # matplotlib warns "findfont: Font family ... not found" at every label for a named font it lacks.
    teach.use_words(words.CHINESE, fonts=["A Font This Machine Does Not Have", "DejaVu Sans Mono"])
    assert words.font_settings() == {"font.family": ["DejaVu Sans Mono", "DejaVu Sans"]}


def test_every_text_in_the_table_is_used_by_a_figure_a_check_or_a_notebook():
    sources = "".join(path.read_text() for path in (ROOT / "src" / "numcnn" / "teach").glob("*.py")
                      if path.name != "words.py")
    sources = re.sub(r'"\s*\n\s*"', "", sources)   # "a long text " "split over lines" -> one literal
    sources += "".join(path.read_text() for path in (ROOT / "docs" / "tutorials").glob("*.ipynb"))
    unused = [text for text in words.ENGLISH if text not in sources]
    assert unused == []


def test_textbook_layer_feeds_gradcheck_through_the_textbooks_own_arrays():
    class Affine:                                       # the textbook's contract, from the previous part
        def __init__(self, W, b):
            self.W, self.b = W, b

        def forward(self, x):
            self.x = x
            return x @ self.W + self.b

        def backward(self, dout):
            self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
            return dout @ self.W.T

    rng = np.random.default_rng(0)
    affine = Affine(rng.standard_normal((4, 3)), rng.standard_normal(3))
    layer = teach.TextbookLayer(affine)
    assert layer.params["W"] is affine.W
    assert nc.gradcheck(layer, rng.standard_normal((2, 4)))

    class WrongDW(Affine):
        def backward(self, dout):
            dx = super().backward(dout)
            self.dW = self.dW * 2
            return dx
    with pytest.raises(nc.GradcheckError, match="W"):
        nc.gradcheck(teach.TextbookLayer(WrongDW(affine.W, affine.b)), rng.standard_normal((2, 4)))


def test_textbook_params_are_the_models_weights_in_the_textbooks_layout(model):
    params = teach.textbook_params(model)
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    np.testing.assert_array_equal(params["W1"], model.layers[0].params["weight"])
    np.testing.assert_array_equal(params["W2"], model.layers[3].params["weight"].T)   # (in, out)
    x = np.random.default_rng(1).random((2, 1, 28, 28))
    h = np.maximum(F.conv2d(x, params["W1"], params["b1"]), 0)
    h = np.maximum(F.max_pool2d(h, 2).reshape(2, -1) @ params["W2"] + params["b2"], 0)
    logits = model.forward(x.astype(np.float32))
    np.testing.assert_allclose(h @ params["W3"] + params["b3"], logits, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="BatchNorm2d"):
        teach.textbook_params(nc.Sequential(nc.Conv2d(1, 2, 3), nc.BatchNorm2d(2)))


def test_forbidding_puts_everything_back_even_when_the_block_fails():
    conv2d, layer_forward = F.conv2d, nc.Conv2d(1, 1, 3).forward
    with pytest.raises(RuntimeError):
        with teach.forbidding(["numcnn.functional:conv2d", "numcnn.functional:conv2d_forward"]):
            assert F.conv2d is not conv2d
            with pytest.raises(Exception, match="F.conv2d_forward"):
                layer_forward(np.zeros((1, 1, 4, 4), np.float32))
            raise RuntimeError("the learner's code failed")
    assert F.conv2d is conv2d
    assert layer_forward(np.zeros((1, 1, 4, 4), np.float32)).shape == (1, 1, 2, 2)


def test_a_verdict_reads_as_its_text_and_is_true_only_when_correct():
    assert bool(teach.check_padding(2)) and not teach.check_padding(...)
    with pytest.raises(AssertionError):        # an ExerciseError is an AssertionError
        teach.check_padding(1)
