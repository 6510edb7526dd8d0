"""Linear (the textbook's Affine) and Flatten."""

from __future__ import annotations

import math

import numpy as np

from .. import init
from ..errors import ConfigError, ShapeError
from ..functional.linear import linear_backward, linear_forward
from .base import Layer, backward_before_forward, check_dout, check_input, errors_named, register_layer


@register_layer
class Linear(Layer):
    """y = x W^T + b on the flattened input, like the book's Affine on 4-D input.

    Maps an (N, ...) input whose non-batch axes hold in_features numbers in all to an
    (N, out_features) output.

    Parameters
    ----------
    in_features : int
        The numbers in each sample: C*H*W for an (N, C, H, W) input.
    out_features : int
        The outputs per sample.
    bias : bool, default True
        Whether the layer has a bias.
    dtype : dtype, default float32
        The parameters' dtype.

    Attributes
    ----------
    params : dict of str to ndarray
        ``weight``, shape (out_features, in_features), He-normal initialised; ``bias``,
        shape (out_features,), zeros (without bias=False).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"Linear: {name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = np.dtype(dtype)
        self.params["weight"] = init.he_normal((out_features, in_features), self.dtype)
        if bias:
            self.params["bias"] = init.zeros((out_features,), self.dtype)
        self._cache = None

    def forward(self, x):
        x = check_input(x, "Linear", None)
        with errors_named("Linear"):
            out, self._cache = linear_forward(x, self.params["weight"], self.params.get("bias"))
        return out

    def backward(self, dout, input_grad=True):
        """The input gradient, from the output gradient; fills ``grads``.

        Parameters
        ----------
        dout : ndarray, shape (N, out_features)
            The gradient of the last forward's output.
        input_grad : bool, default True
            With False only the weights' gradients are computed (see ``backward_params``).

        Returns
        -------
        dx : ndarray, shape (N, ...), or None
            The input's shape; None when input_grad is False.
        """
        if self._cache is None:
            raise backward_before_forward("Linear")
        with errors_named("Linear"):
            dx, self.grads["weight"], db = linear_backward(dout, self._cache, input_grad)
        if db is not None:
            self.grads["bias"] = db
        return dx

    def backward_params(self, dout):
        self.backward(dout, input_grad=False)

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": "bias" in self.params, "dtype": self.dtype.name}


@register_layer
class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...); backward reshapes the gradient back."""

    def __init__(self):
        super().__init__()
        self._x_shape = None

    def forward(self, x):
        x = check_input(x, "Flatten", None)
        if x.ndim < 2:
            raise ShapeError(f"Flatten: expected an input (N, d1, ...) of rank >= 2, got shape {x.shape}")
        self._x_shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # not -1, which fails for N = 0

    def backward(self, dout):
        if self._x_shape is None:
            raise backward_before_forward("Flatten")
        flat = (self._x_shape[0], math.prod(self._x_shape[1:]))
        return check_dout(dout, "Flatten", flat).reshape(self._x_shape)
