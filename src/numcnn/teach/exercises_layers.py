"""The checks of notebooks 4 to 6: the textbook's im2col and col2im, its Convolution and
Pooling classes, a trained network run on them, and layers of one's own.

The textbook's signatures are kept: ``im2col(input_data, filter_h, filter_w, stride=1, pad=0)``,
``col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0)``, ``Convolution(W, b, stride=1,
pad=0)``, ``Pooling(pool_h, pool_w, stride=1, pad=0)``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .. import functional as F
from ..data import load as load_data
from ..errors import ModelFileError
from ..gradcheck import gradcheck
from ..layers import Conv2d, MaxPool2d
from ..model import Sequential, load
from ..zoo import pretrained
from .checks import Rule, exercise
from .exercises_conv import CONVOLUTIONS, MAX_POOLING
from .textbook import TextbookLayer, textbook_params
from .words import say

UNFOLD = Rule("numcnn's im2col", ("numcnn.functional:im2col", "numcnn.functional.im2col:unfold",
                                   "numcnn.functional.reference:im2col"))
FOLD = Rule("numcnn's col2im", ("numcnn.functional:col2im", "numcnn.functional.im2col:fold",
                                "numcnn.functional.reference:col2im", "numcnn.functional:conv_transpose2d",
                                "numcnn.functional:conv_transpose2d_forward", "numcnn.functional:conv2d_backward"))
# The layer classes may unfold with F.im2col and fold with F.col2im, but must not convolve.
CONV_KERNELS = Rule("numcnn's convolution", tuple(p for p in CONVOLUTIONS.places if not p.endswith("im2col")))
# (N, C, H, W), (FH, FW), stride, pad: square and not, strided, padded, a 1x1 kernel
WINDOWS = [((2, 3, 5, 6), (3, 3), 1, 0), ((1, 2, 7, 7), (3, 3), 2, 1), ((2, 1, 6, 5), (2, 3), 1, 1),
           ((1, 2, 4, 4), (1, 1), 1, 0), ((1, 1, 8, 7), (4, 4), 3, 2)]


def _close(name: str, got, expected, tolerance=1e-9) -> None:
    got = np.asarray(got)
    assert got.shape == expected.shape, f"{name}: shape {got.shape}, expected {expected.shape}"
    error = np.abs(got - expected).max() if got.size else 0.0
    assert error <= tolerance * max(1.0, np.abs(expected).max()), f"{name} differs by up to {error:.3g}"


def check_im2col(im2col):
    """The textbook's im2col, a loop over kernel taps, against ``F.im2col``."""
    rng = np.random.default_rng(6)
    cases = [(rng.standard_normal(shape), k, s, p) for shape, k, s, p in WINDOWS]
    expected = [F.im2col(x, k, s, p) for x, k, s, p in cases]

    def run(fn):
        for (x, (fh, fw), s, p), col in zip(cases, expected):
            _close(f"im2col(x {x.shape}, {fh}, {fw}, stride={s}, pad={p})", fn(x, fh, fw, s, p), col)
    return exercise(say("exercise {n} ({name})", n=1, name="im2col"), run, im2col, rule=UNFOLD)


def check_col2im(col2im):
    """The textbook's col2im, the adjoint of im2col, against ``F.col2im``."""
    rng = np.random.default_rng(7)
    cases = []
    for shape, k, s, p in WINDOWS:
        rows = F.im2col(np.zeros(shape), k, s, p).shape
        cases.append((rng.standard_normal(rows), shape, k, s, p))
    expected = [F.col2im(col, shape, k, s, p) for col, shape, k, s, p in cases]

    def run(fn):
        for (col, shape, (fh, fw), s, p), image in zip(cases, expected):
            where = f"col2im(col {col.shape}, {shape}, {fh}, {fw}, stride={s}, pad={p})"
            _close(where, fn(col, shape, fh, fw, s, p), image)
    return exercise(say("exercise {n} ({name})", n=2, name="col2im"), run, col2im, rule=FOLD)


def check_col_mib(mib):
    """MiB of SimpleConvNet's first-layer columns: batch 100, 1x28x28, 5x5 kernels."""
    real = F.im2col(np.zeros((100, 1, 28, 28), np.float32), 5)

    def run(mib):
        assert np.isclose(mib, real.nbytes / 2 ** 20, rtol=1e-3), f"{mib} MiB is not right"
        return f"{mib:.1f} MiB, {real.nbytes / (100 * 28 * 28 * 4):.1f} times the input"
    return exercise(say("exercise {n} ({name})", n=3, name="col_mib"), run, mib)


# (N, C, H, W), (FN, C, FH, FW), stride, pad
CONV_CASES = [((2, 3, 7, 6), (4, 3, 3, 3), 1, 0), ((2, 2, 7, 7), (3, 2, 3, 3), 2, 1),
              ((1, 1, 6, 6), (2, 1, 5, 5), 1, 2)]


def check_convolution(convolution):
    """The textbook's ``Convolution(W, b, stride, pad)``: forward, backward, dW and db against
    ``nc.Conv2d`` on random shapes, then ``nc.gradcheck``; numcnn's convolution ruled out."""
    rng = np.random.default_rng(8)
    cases = []
    for x_shape, w_shape, s, p in CONV_CASES:
        x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
        layer = Conv2d(w_shape[1], w_shape[0], w_shape[2], stride=s, padding=p, dtype=np.float64)
        layer.params["weight"][...], layer.params["bias"][...] = w, b
        out = layer.forward(x)
        dout = rng.standard_normal(out.shape)
        dx = layer.backward(dout)
        cases.append((x, w, b, s, p, out, dout, dx, layer.grads["weight"].copy(), layer.grads["bias"].copy()))

    def run(cls):
        for x, w, b, s, p, out, dout, dx, dw, db in cases:
            where = f"(x {x.shape}, W {w.shape}, stride={s}, pad={p})"
            conv = cls(w.copy(), b.copy(), stride=s, pad=p)
            _close(f"forward {where}", conv.forward(x), out)
            _close(f"backward's dx {where}", conv.backward(dout), dx)
            _close(f"dW {where}", conv.dW, dw)
            _close(f"db {where}", conv.db, db)
        x, w, b, s, p = cases[1][:5]
        gradcheck(TextbookLayer(cls(w[:2, :, :, :].copy(), b[:2].copy(), stride=s, pad=p)), x[:1, :, :5, :5])
        return "it equals nc.Conv2d and passes nc.gradcheck"
    return exercise(say("exercise {n} ({name})", n=1, name="Convolution"), run, convolution, rule=CONV_KERNELS)


POOL_CASES = [((2, 3, 6, 8), 2, 2), ((1, 2, 7, 7), 3, 2), ((2, 1, 5, 6), 2, 1)]


def check_pooling(pooling):
    """The textbook's ``Pooling(pool_h, pool_w, stride, pad)``, max pooling through im2col and
    argmax, against ``nc.MaxPool2d``, then ``nc.gradcheck``; numcnn's max pooling ruled out."""
    rng = np.random.default_rng(9)
    cases = []
    for shape, k, s in POOL_CASES:
        x = rng.permutation(np.linspace(-1, 1, int(np.prod(shape)))).reshape(shape)  # distinct: no ties
        layer = MaxPool2d(k, s)
        out = layer.forward(x)
        dout = rng.standard_normal(out.shape)
        cases.append((x, k, s, out, dout, layer.backward(dout)))

    def run(cls):
        for x, k, s, out, dout, dx in cases:
            where = f"(x {x.shape}, {k}x{k} windows, stride={s})"
            pool = cls(k, k, stride=s)
            _close(f"forward {where}", pool.forward(x), out)
            _close(f"backward {where}", pool.backward(dout), dx)
        x, k, s = cases[1][:3]
        gradcheck(TextbookLayer(cls(k, k, stride=s)), x)
        return "it equals nc.MaxPool2d and passes nc.gradcheck"
    return exercise(say("exercise {n} ({name})", n=2, name="Pooling"), run, pooling, rule=MAX_POOLING)


def check_simple_convnet(predict, count=100):
    """``predict(x, params)``: the textbook's SimpleConvNet run on your Convolution and Pooling
    with the shipped trained weights (``textbook_params(pretrained("simple-convnet"))``) must
    give the trained model's logits on the first ``count`` test images of the sample."""
    model = pretrained("simple-convnet")
    images = load_data("sample")[1][0][:count]
    x = images.astype(np.float64)
    params = textbook_params(model)
    expected = model.forward(images).astype(np.float64)

    def run(fn):
        got = np.asarray(fn(x, {key: value.copy() for key, value in params.items()}))
        _close(f"the logits of {len(x)} images", got, expected, tolerance=1e-4)
        same = int((got.argmax(axis=1) == expected.argmax(axis=1)).sum())
        return f"your layers give the trained model's answer on {same} of {len(x)} images"
    return exercise(say("exercise {n} ({name})", n=3, name="predict"), run, predict,
                    rule=CONV_KERNELS + MAX_POOLING + Rule("numcnn's Sequential", ("numcnn.model:Sequential",)))


def check_swish(swish):
    """A ``Swish`` layer class, y = x * sigmoid(x), with forward and backward."""
    x = np.random.default_rng(11).standard_normal((2, 3, 4, 4)) * 2

    def run(cls):
        _close("forward", cls().forward(x), x / (1 + np.exp(-x)))
        assert cls().forward(x.astype(np.float32)).dtype == np.float32, "float32 in should give float32 out"
        gradcheck(cls(), x)
    return exercise(say("exercise {n} ({name})", n=1, name="Swish"), run, swish)


def check_channel_scale(channel_scale):
    """A registered ``ChannelScale(num_channels, init)`` layer that survives save and load."""
    x = np.random.default_rng(12).standard_normal((2, 3, 4, 4))

    def run(cls):
        layer = cls(3, init=2.0)
        layer.params["scale"] = layer.params["scale"].astype(np.float64)   # float64 for the check
        gradcheck(layer, x)
        model = Sequential(Conv2d(3, 3, 1), cls(3, init=0.5))
        model.layers[1].params["scale"][...] = [0.1, -2.0, 3.0]
        with tempfile.TemporaryDirectory() as folder:
            path = model.save(Path(folder) / "scale.npz")
            try:
                loaded = load(path)
            except ModelFileError as exc:
                raise AssertionError(f"the saved model does not load: {exc}") from None
        assert type(loaded.layers[1]).__name__ == cls.__name__, "the loaded layer has another type"
        x32 = x.astype(np.float32)
        _close("the loaded model's output", loaded.forward(x32), model.forward(x32), tolerance=1e-6)
    return exercise(say("exercise {n} ({name})", n=2, name="ChannelScale"), run, channel_scale)


def check_separable(separable_params, smallest_out_channels):
    """``separable_params(C, FN, K)``, and the fewest output channels from 64 inputs at which a
    separable 3x3 convolution has under a fifth of a full one's parameters."""
    def count(c_in, c_out, k):  # a depthwise Conv2d without bias, then a 1x1 Conv2d with one
        return Conv2d(c_in, c_in, k, groups=c_in, bias=False).num_params() + Conv2d(c_in, c_out, 1).num_params()
    cases = [(16, 32, 3), (3, 8, 5), (64, 64, 1), (7, 2, 3)]
    expected = [count(*case) for case in cases]
    small = [5 * count(64, f, 3) < Conv2d(64, f, 3).num_params() for f in range(1, 129)]

    def run(fn, smallest):
        for case, n in zip(cases, expected):
            assert fn(*case) == n, f"separable_params{case} = {fn(*case)}, expected {n}"
        assert 1 <= smallest <= 128 and small[smallest - 1] and not (smallest > 1 and small[smallest - 2]), \
            f"{smallest} is not the smallest such number of output channels"
        return f"from {smallest} output channels on"
    return exercise(say("exercise {n} ({name})", n=3, name="separable_params"), run, separable_params,
                    smallest_out_channels)
