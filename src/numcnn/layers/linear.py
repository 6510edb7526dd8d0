"""Linear (the textbook's Affine) and Flatten."""

from __future__ import annotations

import math

import numpy as np

from .. import init
from ..errors import ConfigError, ShapeError
from .base import Layer, backward_before_forward, check_input, register_layer


@register_layer
class Linear(Layer):
    """y = x W^T + b on the flattened input, like the book's Affine on 4-D input.

    weight: (out_features, in_features), He-normal initialised
    bias  : (out_features,), zeros
    input (N, ...) with prod(...) == in_features -> output (N, out_features)
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
        self._x2 = self._x_shape = None

    def forward(self, x):
        x = check_input(x, "Linear", None)
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.in_features:
            raise ShapeError(f"Linear: expected input (N, ...) with {self.in_features} features per sample, "
                             f"got shape {x.shape}")
        self._x_shape = x.shape
        self._x2 = x.reshape(x.shape[0], -1)
        out = self._x2 @ self.params["weight"].astype(x.dtype, copy=False).T
        if "bias" in self.params:
            out += self.params["bias"].astype(x.dtype, copy=False)
        return out

    def backward(self, dout):
        if self._x2 is None:
            raise backward_before_forward("Linear")
        dout = check_input(dout, "Linear", 2)
        if dout.shape != (self._x2.shape[0], self.out_features):
            raise ShapeError(f"Linear: expected dout of shape {(self._x2.shape[0], self.out_features)}, "
                             f"got {dout.shape}")
        self.grads["weight"] = dout.T @ self._x2
        if "bias" in self.params:
            self.grads["bias"] = dout.sum(axis=0)
        return (dout @ self.params["weight"].astype(dout.dtype, copy=False)).reshape(self._x_shape)

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": "bias" in self.params, "dtype": self.dtype.name}


@register_layer
class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def __init__(self):
        super().__init__()
        self._x_shape = None

    def forward(self, x):
        x = check_input(x, "Flatten", None)
        if x.ndim < 2:
            raise ShapeError(f"Flatten: expected an input (N, d1, ...) of rank >= 2, got shape {x.shape}")
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        if self._x_shape is None:
            raise backward_before_forward("Flatten")
        return np.asarray(dout).reshape(self._x_shape)
