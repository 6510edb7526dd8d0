"""Pooling layers: no parameters, they remember what backward needs and call the kernels."""

from __future__ import annotations

from ..functional.pool import (avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d,
                               global_avg_pool2d_backward, max_pool2d_backward, max_pool2d_forward,
                               pool_params)
from .base import Layer, backward_before_forward, check_input, errors_named, jsonable, register_layer


class _Pool2d(Layer):
    """Shared constructor and plumbing; subclasses name their forward/backward kernels."""

    _forward = staticmethod(max_pool2d_forward)
    _backward = staticmethod(max_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        with errors_named(type(self).__name__):
            pool_params(kernel_size, stride, padding)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self._cache = None

    def _kernel_args(self):
        return (self.kernel_size, self.stride, self.padding)

    def forward(self, x):
        name = type(self).__name__
        x = check_input(x, name, 4)
        with errors_named(name):
            out, self._cache = self._forward(x, *self._kernel_args())
        return out

    def backward(self, dout):
        name = type(self).__name__
        if self._cache is None:
            raise backward_before_forward(name)
        with errors_named(name):
            return self._backward(dout, self._cache)

    def config(self):
        return {"kernel_size": jsonable(self.kernel_size), "stride": jsonable(self.stride),
                "padding": jsonable(self.padding)}


@register_layer
class MaxPool2d(_Pool2d):
    """Max pooling; stride defaults to kernel_size. (N, C, H, W) -> (N, C, OH, OW)"""


@register_layer
class AvgPool2d(_Pool2d):
    """Average pooling; stride defaults to kernel_size. (N, C, H, W) -> (N, C, OH, OW)"""

    _forward = staticmethod(avg_pool2d_forward)
    _backward = staticmethod(avg_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = bool(count_include_pad)

    def _kernel_args(self):
        return super()._kernel_args() + (self.count_include_pad,)

    def config(self):
        return {**super().config(), "count_include_pad": self.count_include_pad}


@register_layer
class GlobalAvgPool2d(Layer):
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1)."""

    def __init__(self):
        super().__init__()
        self._x_shape = None

    def forward(self, x):
        x = check_input(x, "GlobalAvgPool2d", 4)
        self._x_shape = x.shape
        return global_avg_pool2d(x)

    def backward(self, dout):
        if self._x_shape is None:
            raise backward_before_forward("GlobalAvgPool2d")
        with errors_named("GlobalAvgPool2d"):
            return global_avg_pool2d_backward(dout, self._x_shape)
