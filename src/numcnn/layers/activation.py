"""Activation layers: each keeps the one array its backward needs."""

from __future__ import annotations

import numbers

from ..errors import ConfigError
from ..functional import activation as A
from .base import Layer, backward_before_forward, check_dout, check_input, register_layer


class _Elementwise(Layer):
    """Shared plumbing: forward keeps x (or the output, for sigmoid/tanh) for backward."""

    keep_output = False

    def __init__(self):
        super().__init__()
        self._kept = None

    def forward(self, x):
        x = check_input(x, type(self).__name__)
        out = self._f(x)
        self._kept = out if self.keep_output else x
        return out

    def backward(self, dout):
        if self._kept is None:
            raise backward_before_forward(type(self).__name__)
        dout = check_dout(dout, type(self).__name__, self._kept.shape)
        return self._df(dout, self._kept)


@register_layer
class ReLU(_Elementwise):
    """max(x, 0), any shape."""

    def _f(self, x):
        return A.relu(x)

    def _df(self, dout, x):
        return A.relu_backward(dout, x)


@register_layer
class LeakyReLU(_Elementwise):
    """x if x > 0 else negative_slope * x, any shape: (N, ...) -> (N, ...).

    Parameters
    ----------
    negative_slope : float, default 0.01
        The slope for x <= 0.
    """

    def __init__(self, negative_slope=0.01):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise ConfigError(f"LeakyReLU: negative_slope must be a number, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def _f(self, x):
        return A.leaky_relu(x, self.negative_slope)

    def _df(self, dout, x):
        return A.leaky_relu_backward(dout, x, self.negative_slope)

    def config(self):
        return {"negative_slope": self.negative_slope}


@register_layer
class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), stable for large ``|x|``, any shape."""

    keep_output = True

    def _f(self, x):
        return A.sigmoid(x)

    def _df(self, dout, y):
        return A.sigmoid_backward(dout, y)


@register_layer
class Tanh(_Elementwise):
    """tanh(x), any shape."""

    keep_output = True

    def _f(self, x):
        return A.tanh(x)

    def _df(self, dout, y):
        return A.tanh_backward(dout, y)


@register_layer
class Softmax(_Elementwise):
    """Softmax over axis 1: (N, K) -> (N, K). For training, prefer SoftmaxCrossEntropy on logits."""

    keep_output = True

    def _f(self, x):
        return A.softmax(x, axis=1)

    def _df(self, dout, y):
        return A.softmax_backward(dout, y, axis=1)


class FusesReLU:
    """Mixin for a layer whose kernel can apply a ReLU to its own output, as it writes it:
    the layer defines ``_forward(x, relu)``, and its backward then goes back through both.
    Sequential runs such a layer and the ReLU right after it as one (see ``Layer.fuses``)."""

    def forward(self, x):
        return self._forward(x, relu=False)

    def fuses(self, layer):
        return type(layer) is ReLU

    def forward_fused(self, x, layer):
        if not self.fuses(layer):
            raise ConfigError(f"{type(self).__name__} fuses a ReLU after it, not a {type(layer).__name__}")
        return self._forward(x, relu=True)
