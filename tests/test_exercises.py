"""The notebooks' exercises, in both editions: every check the notebooks call passes on the
solution kept in docs/tutorials/solutions (shared by the English and the Chinese notebooks),
answers "not written yet" (without raising) on a stub, and refuses a wrong answer and an answer
that calls what the exercise rules out. The Chinese edition's checks run with its words in use,
and answer in Chinese.

The checks are found by reading the notebooks, so a new exercise without a solution or without
a wrong answer here fails this file."""

import importlib.util
import re

import numpy as np
import pytest
from editions import ENGLISH, FOLDERS, NAMES, editions, read

import numcnn as nc
import numcnn.functional as F
from numcnn import teach
from numcnn.functional import reference
from numcnn.layers import LAYER_REGISTRY

TUTORIALS = ENGLISH
CHECK_CELL = re.compile(r"^teach\.(check_\w+)\((.*)\)$")
# What a verdict says, in each edition's words: the expectation, written here, not read from the table.
VERDICT = {"en": {"correct": "correct", "wrong": "wrong"}, "zh": {"correct": "正确", "wrong": "不对"}}


def exercises(folder):
    """(notebook, solutions module name, check name, argument source) for every check cell of
    the notebooks in ``folder``."""
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        cells = read(path)["cells"]
        text = "".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
        module = re.search(r"solutions/(\w+)\.py", text)
        for cell in cells:
            match = CHECK_CELL.match("".join(cell["source"]).strip())
            if cell["cell_type"] == "code" and match:
                found.append((path.name, module and module.group(1), match.group(1), match.group(2)))
    return found


EXERCISES = {edition: exercises(folder) for edition, folder in FOLDERS.items()}
# Every check of both editions; a Chinese notebook that is missing is caught by the first test below.
CHECKS = [pytest.param(edition, *exercise, id=f"{edition}-{exercise[2]}")
          for edition, found in EXERCISES.items() for exercise in found]


@pytest.fixture
def registry():
    """The layer registry, put back as it was (a solution registers its layers)."""
    saved = dict(LAYER_REGISTRY)
    yield
    LAYER_REGISTRY.clear()
    LAYER_REGISTRY.update(saved)


def solutions(module: str):
    spec = importlib.util.spec_from_file_location(f"solutions_{module}", TUTORIALS / "solutions" / f"{module}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def solution_answers(module: str, arguments: str) -> tuple:
    """The notebook's argument expressions evaluated among the solutions."""
    return eval(f"({arguments},)", vars(solutions(module)))


@pytest.fixture
def words_of():
    """Puts an edition's words in use, as its notebooks do; English again afterwards."""
    def use(edition):
        if edition == "zh":
            teach.use_words(teach.words.CHINESE, fonts=teach.words.CJK_FONTS)
    yield use
    teach.use_words(None)


@pytest.mark.parametrize("edition", editions())
def test_every_notebook_has_checked_exercises_and_names_its_solutions(edition):
    found = EXERCISES[edition]
    notebooks = {name for name, *_ in found}
    assert notebooks == set(NAMES), f"no exercises found in {sorted(set(NAMES) - notebooks)}"
    assert all(module and (TUTORIALS / "solutions" / f"{module}.py").exists() for _, module, _, _ in found)
    assert sorted(check for *_, check, _ in found) == sorted(n for n in teach.__all__ if n.startswith("check_"))


@pytest.mark.parametrize("edition, notebook, module, check, arguments", CHECKS)
def test_the_solution_passes(edition, notebook, module, check, arguments, registry, words_of):
    words_of(edition)
    verdict = getattr(teach, check)(*solution_answers(module, arguments))
    assert verdict.passed and VERDICT[edition]["correct"] in repr(verdict), repr(verdict)


def raises_not_implemented(*args, **kwargs):
    raise NotImplementedError


class StubConvolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b = W, b

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError


@pytest.mark.parametrize("check, answers", [
    ("check_out_size", (raises_not_implemented,)), ("check_padding", (...,)),
    ("check_corners", (..., 2.0)), ("check_commute", ({"max_pool": ..., "avg_pool": ...},)),
    ("check_im2col", (raises_not_implemented,)), ("check_convolution", (StubConvolution,)),
    ("check_separable", (raises_not_implemented, ...)),
])
def test_a_stub_is_not_written_yet_and_raises_nothing(check, answers):
    verdict = getattr(teach, check)(*answers)
    assert not verdict.passed
    assert "not written yet" in repr(verdict) or "not finished" in repr(verdict), repr(verdict)


def test_a_half_written_class_says_which_method_is_missing():
    backward = solutions("backward")

    class HalfConvolution(backward.Convolution):
        def backward(self, dout):
            raise NotImplementedError

    verdict = teach.check_convolution(HalfConvolution)
    assert not verdict.passed and "not finished" in repr(verdict)
    assert "HalfConvolution.backward raises NotImplementedError" in repr(verdict)


def wrong_answers():
    """check name -> answers that must be refused, each built from the solution with one mistake."""
    one, two, three = (solutions(m) for m in ("convolution_by_hand", "channels_and_filters", "pooling"))
    four, five = solutions("im2col"), solutions("backward")

    class DwNotTransposed(five.Convolution):
        def backward(self, dout):
            dx = super().backward(dout)
            FN, C, FH, FW = self.W.shape
            self.dW = (self.col.T @ dout.transpose(0, 2, 3, 1).reshape(-1, FN)).reshape(FN, C, FH, FW)
            return dx

    class ForgetsTheBias(five.Convolution):
        def forward(self, x):
            return super().forward(x) - self.b.reshape(1, -1, 1, 1)

    class PoolingWithoutCol2im(five.Pooling):
        def backward(self, dout):   # each window's gradient spread evenly: average pooling's backward
            return np.repeat(np.repeat(dout, self.pool_h, axis=2), self.pool_w, axis=3) / (self.pool_h * self.pool_w)

    class SwishWithoutProductRule(nc.Layer):
        def forward(self, x):
            self.s = F.sigmoid(x)
            return x * self.s

        def backward(self, dout):
            return dout * self.s

    six = solutions("your_own_layer")

    @nc.register_layer
    class ChannelScaleWithoutConfig(six.ChannelScale):
        def config(self):
            return {}

    def predict_without_relu(x, params):
        conv, pool = five.Convolution(params["W1"], params["b1"]), five.Pooling(2, 2, stride=2)
        h = pool.forward(conv.forward(x))
        h = np.maximum(h.reshape(len(x), -1) @ params["W2"] + params["b2"], 0)
        return h @ params["W3"] + params["b3"]

    return {
        "check_out_size": [(lambda H, FH, P, S: round((H + 2 * P - FH) / S) + 1,)],      # rounds
        "check_padding": [(1,)],
        "check_edge_kernel": [(np.ones((3, 3)),), (one.edge_kernel.T,)],                 # blur; horizontal
        "check_conv_params": [(lambda c_in, c_out, k: c_out * k * k + c_out,)],          # forgets C
        "check_gray": [(np.full((1, 3, 1, 1), 1 / 3),)],
        "check_conv_multi": [(lambda x, w: two.conv_multi(x[:, :1], w[:, :1]),)],       # channel 0 only
        "check_max_pool_grad": [(lambda x, dout: np.kron(dout, np.ones((2, 2))) / 4,)],  # average pooling's
        "check_corners": [(2.0, 2.0)],
        "check_commute": [({"max_pool": True, "avg_pool": True},)],
        "check_im2col": [(lambda x, fh, fw, s=1, p=0: four.im2col(x.transpose(0, 1, 3, 2), fw, fh, s, p),)],
        "check_col2im": [(lambda col, shape, fh, fw, s=1, p=0: np.pad(
            four.col2im(col, shape, fh, fw, s, p)[:, :, 1:, :], [(0, 0), (0, 0), (0, 1), (0, 0)]),)],
        "check_col_mib": [(100 * 28 * 28 * 25 * 4 / 2 ** 20,)],                          # 28x28 positions
        "check_convolution": [(DwNotTransposed,), (ForgetsTheBias,)],
        "check_pooling": [(PoolingWithoutCol2im,)],
        "check_simple_convnet": [(predict_without_relu,)],
        "check_swish": [(SwishWithoutProductRule,)],
        "check_channel_scale": [(ChannelScaleWithoutConfig,)],
        "check_separable": [(lambda c, f, k: c * k * k + f * c, six.smallest_out_channels),  # no bias
                            (six.separable_params, six.smallest_out_channels - 1)],
    }


@pytest.mark.parametrize("edition", editions())
def test_every_check_refuses_its_wrong_answers(edition, registry, words_of):
    wrong = wrong_answers()
    assert set(wrong) == {check for *_, check, _ in EXERCISES[edition]}
    words_of(edition)
    for check, answers in wrong.items():
        for answer in answers:
            with pytest.raises(teach.ExerciseError, match=VERDICT[edition]["wrong"]):
                getattr(teach, check)(*answer)


@pytest.mark.parametrize("check, answer, called", [
    ("check_out_size", lambda H, FH, P, S: F.output_size(H, FH, S, P, P, 1), "F.output_size"),
    ("check_conv_params", lambda c_in, c_out, k: nc.Conv2d(c_in, c_out, k).num_params(), "nc.Conv2d"),
    ("check_conv_multi", lambda x, w: F.conv2d(x, w), "F.conv2d"),
    ("check_max_pool_grad", lambda x, dout: F.max_pool2d(x[None, None], 2), "F.max_pool2d"),
    ("check_im2col", lambda x, fh, fw, s=1, p=0: F.im2col(x, (fh, fw), s, p), "F.im2col"),
    ("check_im2col", lambda x, fh, fw, s=1, p=0: reference.im2col(x, fh, s, p), "reference.im2col"),
    ("check_col2im", lambda col, shape, fh, fw, s=1, p=0: F.col2im(col, shape, (fh, fw), s, p), "F.col2im"),
])
def test_a_function_the_exercise_rules_out_is_refused(check, answer, called):
    with pytest.raises(teach.ExerciseError, match=f"do without .*calls .*{re.escape(called)}"):
        getattr(teach, check)(answer)
    assert F.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)))[0, 0, 0, 0] == 9   # all put back


def test_a_layer_class_that_convolves_with_numcnn_is_refused():
    class ConvolutionByNumcnn:
        def __init__(self, W, b, stride=1, pad=0):
            self.layer = nc.Conv2d(W.shape[1], W.shape[0], W.shape[2], stride=stride, padding=pad, dtype=np.float64)
            self.layer.params["weight"], self.layer.params["bias"] = W, b
            self.W, self.b = W, b

        def forward(self, x):
            return self.layer.forward(x)

        def backward(self, dout):
            dx = self.layer.backward(dout)
            self.dW, self.db = self.layer.grads["weight"], self.layer.grads["bias"]
            return dx

    with pytest.raises(teach.ExerciseError, match="conv2d_forward"):
        teach.check_convolution(ConvolutionByNumcnn)


def test_a_name_imported_into_the_learners_namespace_is_taken_away_too():
    namespace = {}   # a notebook's globals, after `from numcnn.functional import conv2d`
    exec("from numcnn.functional import conv2d\ndef conv_multi(x, w):\n    return conv2d(x, w)\n", namespace)
    with pytest.raises(teach.ExerciseError, match=r"calls F\.conv2d$"):
        teach.check_conv_multi(namespace["conv_multi"])
    assert namespace["conv2d"] is F.conv2d
