"""Bad input to every layer, loss and kernel: a typed error (ShapeError is a ValueError, DTypeError
a TypeError) whose message names the layer and what it got, never a raw NumPy message."""

import numpy as np
import pytest

import numcnn as nc
from numcnn import functional as F
from numcnn.errors import DTypeError, ShapeError

NUMPY_MESSAGES = ("operands could not be broadcast", "cannot reshape array", "not aligned",
                  "out of bounds for axis", "Input operand", "too many indices")


def said(got) -> tuple[str, ...]:
    """The ways a message may state what it got: a dtype by name; a shape as a whole, or, for
    an image too small for the window, by its spatial size ("2x5" or "(2, 5)")."""
    if isinstance(got, tuple) and len(got) == 4:
        return str(got), f"{got[2]}x{got[3]}", str(got[2:])
    return (str(got),)


def assert_error(exc_type, name, got, call, *args):
    """call(*args) raises exc_type, naming ``name`` and ``got`` (a shape or dtype) in its message."""
    with pytest.raises(exc_type) as info:
        call(*args)
    message = str(info.value)
    assert name in message, f"{message!r} does not name {name!r}"
    assert any(s in message for s in said(got)), f"{message!r} does not say it got {got}"
    assert not any(m in message for m in NUMPY_MESSAGES), f"raw NumPy message: {message!r}"


def zeros(shape, dtype=np.float32):
    return np.zeros(shape, dtype)


# (layer name, layer factory, bad input shapes: wrong rank, wrong channel count, smaller than the window)
SHAPE_CASES = [
    ("Conv2d", lambda: nc.Conv2d(3, 4, 3), [(3, 5, 5), (2, 3, 5, 5, 1), (2, 4, 5, 5), (2, 3, 2, 5), (2, 3, 5, 2)]),
    ("Conv2d", lambda: nc.Conv2d(2, 2, 3, dilation=2), [(2, 2, 4, 5)]),
    ("Conv2d", lambda: nc.Conv2d(4, 4, 3, groups=2), [(2, 2, 5, 5)]),
    ("MaxPool2d", lambda: nc.MaxPool2d(3), [(3, 5, 5), (2, 3, 2, 5), (2, 3, 5, 2)]),
    ("AvgPool2d", lambda: nc.AvgPool2d(3), [(3, 5, 5), (2, 3, 2, 2)]),
    ("AvgPool2d", lambda: nc.AvgPool2d((2, 4), padding=(0, 1)), [(1, 1, 3, 1)]),
    ("GlobalAvgPool2d", lambda: nc.GlobalAvgPool2d(), [(2, 3), (2, 3, 4)]),
    ("Linear", lambda: nc.Linear(8, 3), [(8,), (2, 7), (2, 9), (2, 2, 2, 3)]),
    ("Flatten", lambda: nc.Flatten(), [(5,)]),
    ("BatchNorm1d", lambda: nc.BatchNorm1d(3), [(3,), (2, 4), (2, 3, 4, 4), (2, 2, 5)]),
    ("BatchNorm2d", lambda: nc.BatchNorm2d(3), [(2, 3, 4), (2, 4, 3, 3), (2, 3, 4, 4, 1)]),
]


@pytest.mark.parametrize("name, make, shape", [(name, make, shape) for name, make, shapes in SHAPE_CASES
                                               for shape in shapes],
                         ids=[f"{name}{shape}" for name, _, shapes in SHAPE_CASES for shape in shapes])
def test_layers_reject_bad_shapes_naming_the_layer_and_the_shape(name, make, shape):
    assert_error(ShapeError, name, shape, make().forward, zeros(shape))


DTYPE_CASES = [
    ("Conv2d", lambda: nc.Conv2d(3, 4, 3), (2, 3, 5, 5)),
    ("MaxPool2d", lambda: nc.MaxPool2d(2), (2, 3, 4, 4)),
    ("AvgPool2d", lambda: nc.AvgPool2d(2), (2, 3, 4, 4)),
    ("GlobalAvgPool2d", lambda: nc.GlobalAvgPool2d(), (2, 3, 4, 4)),
    ("Linear", lambda: nc.Linear(8, 3), (2, 8)),
    ("Flatten", lambda: nc.Flatten(), (2, 3, 4)),
    ("ReLU", lambda: nc.ReLU(), (2, 3)),
    ("LeakyReLU", lambda: nc.LeakyReLU(), (2, 3)),
    ("Sigmoid", lambda: nc.Sigmoid(), (2, 3)),
    ("Tanh", lambda: nc.Tanh(), (2, 3)),
    ("Dropout", lambda: nc.Dropout(0.5, seed=0), (2, 3)),
    ("BatchNorm1d", lambda: nc.BatchNorm1d(3), (4, 3)),
    ("BatchNorm2d", lambda: nc.BatchNorm2d(3), (2, 3, 2, 2)),
]


@pytest.mark.parametrize("int_dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("name, make, shape", DTYPE_CASES, ids=[case[0] for case in DTYPE_CASES])
def test_layers_reject_integer_input_naming_the_layer_and_the_dtype(name, make, shape, int_dtype):
    assert_error(DTypeError, name, np.dtype(int_dtype), make().forward, np.ones(shape, int_dtype))


@pytest.mark.parametrize("name, make, shape", [("BatchNorm1d", lambda: nc.BatchNorm1d(3), (1, 3)),
                                               ("BatchNorm2d", lambda: nc.BatchNorm2d(3), (1, 3, 1, 1))])
def test_batchnorm_in_train_mode_rejects_one_value_per_channel_like_torch(name, make, shape):
    assert_error(ValueError, name, shape, make().forward, zeros(shape))
    make().eval().forward(zeros(shape))  # the running statistics need no batch


def test_dropout_rejects_integers_in_eval_mode_too():
    assert_error(DTypeError, "Dropout", "int64", nc.Dropout(0.5, seed=0).eval().forward, np.ones((2, 3), np.int64))


# -- losses ----------------------------------------------------------------------------------------

def test_cross_entropy_rejects_bad_logits_and_targets():
    loss = nc.SoftmaxCrossEntropy()
    labels = np.array([0, 1])
    assert_error(ShapeError, "SoftmaxCrossEntropy", (3,), loss.forward, zeros((3,)), labels)
    assert_error(ShapeError, "SoftmaxCrossEntropy", (2, 3, 1), loss.forward, zeros((2, 3, 1)), labels)
    assert_error(ShapeError, "SoftmaxCrossEntropy", (3,), loss.forward, zeros((2, 3)), np.array([0, 1, 2]))
    assert_error(ShapeError, "SoftmaxCrossEntropy", (2, 4), loss.forward, zeros((2, 3)), zeros((2, 4)))
    assert_error(DTypeError, "SoftmaxCrossEntropy", "int64", loss.forward, np.zeros((2, 3), np.int64), labels)
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy"):
        loss.forward(zeros((2, 3)), np.array([0, 3]))  # a label out of range


def test_mse_rejects_mismatched_shapes_and_integer_predictions():
    loss = nc.MSELoss()
    assert_error(ShapeError, "MSELoss", (2, 4), loss.forward, zeros((2, 3)), zeros((2, 4)))
    assert_error(DTypeError, "MSELoss", "int64", loss.forward, np.zeros((2, 3), np.int64), zeros((2, 3)))


@pytest.mark.parametrize("call", [F.cross_entropy, F.cross_entropy_forward])
def test_functional_cross_entropy_names_itself(call):
    assert_error(ShapeError, "cross_entropy", (3,), call, zeros((2, 3)), np.array([0, 1, 2]))


@pytest.mark.parametrize("call", [F.mse_loss, F.mse_forward])
def test_functional_mse_names_itself(call):
    assert_error(ShapeError, "mse", (2, 4), call, zeros((2, 3)), zeros((2, 4)))


# -- kernels and configurations --------------------------------------------------------------------

def test_conv2d_kernel_rejects_bad_shapes_naming_itself():
    weight = zeros((4, 3, 3, 3))
    assert_error(ShapeError, "conv2d", (3, 5, 5), F.conv2d, zeros((3, 5, 5)), weight)
    assert_error(ShapeError, "conv2d", (2, 2, 5, 5), F.conv2d, zeros((2, 2, 5, 5)), weight)
    assert_error(ShapeError, "conv2d", (2, 3, 2, 2), F.conv2d, zeros((2, 3, 2, 2)), weight)
    assert_error(DTypeError, "conv2d", "int64", F.conv2d, np.zeros((2, 3, 5, 5), np.int64), weight)


@pytest.mark.parametrize("call, shape", [(F.max_pool2d, (1, 1, 2, 2)), (F.avg_pool2d, (1, 1, 2, 2)),
                                         (F.max_pool2d, (4, 4)), (F.avg_pool2d, (4, 4))])
def test_pool_kernels_reject_bad_shapes_naming_themselves(call, shape):
    assert_error(ShapeError, call.__name__, shape, call, zeros(shape), 3)


def test_im2col_rejects_a_window_that_does_not_fit():
    with pytest.raises(ValueError):
        F.im2col(zeros((1, 1, 2, 2)), 3)
    with pytest.raises(ValueError):
        F.im2col(zeros((1, 1, 5, 5)), 3, dilation=3)
    with pytest.raises(ValueError):
        F.col2im(zeros((1, 9)), (1, 1, 2, 2), 3)


@pytest.mark.parametrize("build", [
    lambda: nc.Conv2d(3, 4, 3, groups=2).forward(zeros((1, 3, 5, 5))),          # groups must divide both
    lambda: nc.Conv2d(4, 3, 3, groups=2).forward(zeros((1, 4, 5, 5))),
    lambda: nc.Conv2d(2, 2, 3, stride=2, padding="same").forward(zeros((1, 2, 5, 5))),  # as PyTorch
    lambda: nc.Conv2d(2, 2, 0).forward(zeros((1, 2, 5, 5))),
    lambda: nc.Conv2d(2, 2, 3, stride=0).forward(zeros((1, 2, 5, 5))),
    lambda: nc.Conv2d(2, 2, 3, padding=-1).forward(zeros((1, 2, 5, 5))),
    lambda: nc.Conv2d(2, 2, 3, padding="full").forward(zeros((1, 2, 5, 5))),
    lambda: nc.MaxPool2d(2, padding=2).forward(zeros((1, 1, 6, 6))),             # padding > kernel / 2
    lambda: nc.AvgPool2d(3, padding=2).forward(zeros((1, 1, 6, 6))),
    lambda: nc.MaxPool2d((4, 2), padding=(1, 2)).forward(zeros((1, 1, 6, 6))),
    lambda: F.max_pool2d(zeros((1, 1, 6, 6)), 3, padding=2),
    lambda: F.conv2d(zeros((1, 2, 5, 5)), zeros((2, 2, 3, 3)), stride=2, padding="same"),
    lambda: F.conv2d(zeros((1, 4, 5, 5)), zeros((3, 2, 3, 3)), groups=2),
], ids=["conv in_channels % groups", "conv out_channels % groups", "conv same with stride", "conv kernel 0",
        "conv stride 0", "conv negative padding", "conv unknown padding", "maxpool padding", "avgpool padding",
        "maxpool pair padding", "max_pool2d padding", "conv2d same with stride", "conv2d groups"])
def test_bad_configurations_raise_value_errors(build):
    with pytest.raises(ValueError):
        build()


# Every layer's backward takes only a gradient of its forward output's shape: one that NumPy
# would broadcast, or reshape, into a gradient of the wrong shape is an error too.
DOUT_CASES = [
    ("ReLU", nc.ReLU, (2, 3, 5, 5), [(1, 3, 5, 5), (5,), (2, 4)]),
    ("Tanh", nc.Tanh, (2, 3, 5, 5), [(5,)]),
    ("LeakyReLU", nc.LeakyReLU, (2, 6), [(1, 6), (2, 1)]),
    ("Sigmoid", nc.Sigmoid, (2, 6), [(6,)]),
    ("Softmax", nc.Softmax, (2, 6), [(1, 6)]),
    ("Dropout", lambda: nc.Dropout(0.5), (2, 6), [(1, 6), (2, 3)]),
    ("Dropout", lambda: nc.Dropout(0.5).eval(), (2, 6), [(1, 6), (2, 3)]),
    ("Dropout", lambda: nc.Dropout(0.0), (2, 6), [(1, 6)]),
    ("BatchNorm2d", lambda: nc.BatchNorm2d(3), (2, 3, 5, 5), [(2, 3, 5, 4), (1, 3, 5, 5)]),
    ("BatchNorm1d", lambda: nc.BatchNorm1d(3), (4, 3), [(4, 1), (2, 3)]),
    ("Normalize", lambda: nc.Normalize([0.5] * 3, [2.0] * 3), (2, 3, 5, 5), [(1, 3, 5, 5), (2, 3, 1, 1)]),
    ("Flatten", nc.Flatten, (2, 3, 5, 5), [(2, 70), (1, 75), (2, 3, 5, 5)]),
    ("AdaptiveAvgPool2d", lambda: nc.AdaptiveAvgPool2d(2), (2, 3, 5, 5), [(2, 3, 7, 7), (2, 3, 5, 5)]),
    ("AdaptiveMaxPool2d", lambda: nc.AdaptiveMaxPool2d(2), (2, 3, 5, 5), [(2, 3, 7, 7), (1, 3, 2, 2)]),
    ("GlobalMaxPool2d", nc.GlobalMaxPool2d, (2, 3, 5, 5), [(2, 3, 2, 2)]),
]


@pytest.mark.parametrize("name, make, shape, bad", [(name, make, shape, bad) for name, make, shape, bads in DOUT_CASES
                                                    for bad in bads])
def test_backward_rejects_a_gradient_of_another_shape(name, make, shape, bad):
    layer = make()
    layer.forward(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    assert_error(ShapeError, name, bad, layer.backward, zeros(bad))


@pytest.mark.parametrize("build, message", [
    (lambda: nc.LeakyReLU("a"), "negative_slope must be a number"),
    (lambda: nc.Dropout("a"), "p must be a number in"),
    (lambda: nc.Dropout(True), "p must be a number in"),
    (lambda: nc.Normalize("ab", [1.0]), "mean and std as numbers"),
])
def test_constructors_refuse_what_is_not_a_number_with_a_config_error(build, message):
    with pytest.raises(nc.ConfigError, match=message):
        build()
