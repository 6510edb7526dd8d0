"""Pooling layers: no parameters, they remember what backward needs and call the kernels."""

from __future__ import annotations

from ..errors import ConfigError
from ..functional.adaptive import (
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    adaptive_max_pool2d_backward,
    adaptive_max_pool2d_forward,
    output_pair,
)
from ..functional.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    max_pool2d_backward,
    max_pool2d_forward,
    pool_params,
)
from ..functional.unpool import (
    max_pool2d_indices,
    max_unpool2d_backward,
    max_unpool2d_forward,
)
from .base import (
    Layer,
    backward_before_forward,
    check_input,
    errors_named,
    jsonable,
    register_layer,
)


class _Pool2d(Layer):
    """Shared constructor and plumbing; subclasses name their forward/backward kernels."""

    _forward = staticmethod(max_pool2d_forward)
    _backward = staticmethod(max_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        with errors_named(type(self).__name__):
            pool_params(kernel_size, stride, padding, dilation=dilation)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, bool(ceil_mode)
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
                "padding": jsonable(self.padding), "ceil_mode": self.ceil_mode}


@register_layer
class MaxPool2d(_Pool2d):
    """Max pooling with PyTorch's arguments; stride defaults to kernel_size.

    (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2*PH - DH*(KH-1) - 1) // SH + 1, rounded up with
    ceil_mode.

    Parameters
    ----------
    kernel_size : int or pair of int
        (KH, KW).
    stride : int, pair of int or None, default None
        (SH, SW); None is kernel_size.
    padding : int, pair, 4-tuple or "same", default 0
        Padding counted as -inf (``functional.max_pool2d_forward``).
    dilation : int or pair of int, default 1
        (DH, DW), the spacing of the window's taps.
    return_indices : bool, default False
        ``forward`` also returns each output's winner, for ``MaxUnpool2d``.
    ceil_mode : bool, default False
        Round the output size up, keeping a last, partial window that starts inside the input
        or its padding.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = bool(return_indices)

    def _kernel_args(self):
        return super()._kernel_args() + (self.dilation, self.ceil_mode)

    def forward(self, x):
        """Each window's maximum; keeps the winners for ``backward``.

        Parameters
        ----------
        x : ndarray, shape (N, C, H, W)
            Float input.

        Returns
        -------
        out : ndarray, shape (N, C, OH, OW)
            The output; with return_indices, (out, indices) as PyTorch returns them.
        indices : ndarray, shape (N, C, OH, OW)
            Only with return_indices: each output's winner as a flat int64 index into its (H, W)
            input plane (for ``MaxUnpool2d``).
        """
        out = super().forward(x)
        return (out, max_pool2d_indices(self._cache)) if self.return_indices else out

    def config(self):
        return {**super().config(), "dilation": jsonable(self.dilation), "return_indices": self.return_indices}


@register_layer
class AvgPool2d(_Pool2d):
    """Average pooling; stride defaults to kernel_size. (N, C, H, W) -> (N, C, OH, OW).

    Parameters
    ----------
    kernel_size : int or pair of int
        (KH, KW).
    stride : int, pair of int or None, default None
        (SH, SW); None is kernel_size.
    padding : int, pair, 4-tuple or "same", default 0
        Zero padding.
    ceil_mode : bool, default False
        Round the output size up, as ``MaxPool2d`` does.
    count_include_pad : bool, default True
        Count the padding in each window's divisor.
    divisor_override : int or None, default None
        Divide every window's sum by this number instead of its count.
    """

    _forward = staticmethod(avg_pool2d_forward)
    _backward = staticmethod(avg_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode)
        if divisor_override is not None and (isinstance(divisor_override, bool) or not isinstance(divisor_override, int)
                                             or divisor_override < 1):
            raise ConfigError(f"AvgPool2d: divisor_override must be a positive int or None, got {divisor_override!r}")
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def _kernel_args(self):
        return super()._kernel_args() + (self.count_include_pad, self.ceil_mode, self.divisor_override)

    def config(self):
        return {**super().config(), "count_include_pad": self.count_include_pad,
                "divisor_override": self.divisor_override}


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


@register_layer
class MaxUnpool2d(Layer):
    """The inverse of max pooling that PyTorch calls MaxUnpool2d: values put back at their indices.

    Parameters
    ----------
    kernel_size : int or pair of int
        (KH, KW).
    stride : int, pair of int or None, default None
        (SH, SW); None is kernel_size.
    padding : int, pair or 4-tuple, default 0
        The max pool's padding.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        with errors_named("MaxUnpool2d"):
            pool_params(kernel_size, stride, padding, "MaxUnpool2d")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self._cache = None

    def forward(self, x, indices=None, output_size=None):
        """Put each value of x back at its index in a zero map.

        Parameters
        ----------
        x : ndarray, shape (N, C, OH, OW)
            Float input: a ``MaxPool2d``'s output.
        indices : ndarray, shape (N, C, OH, OW)
            As a ``MaxPool2d`` with return_indices gives them; required.
        output_size : tuple of int, optional
            (H, W), or a longer shape ending in them; None gives
            H = (OH - 1) * stride - 2 * padding + kernel_size, likewise W.

        Returns
        -------
        ndarray, shape (N, C, H, W)
            Zero but at the indices.
        """
        if indices is None:
            raise ConfigError("MaxUnpool2d: forward(x, indices) needs the indices a MaxPool2d with "
                              "return_indices=True gave")
        x = check_input(x, "MaxUnpool2d", 4)
        with errors_named("MaxUnpool2d"):
            out, self._cache = max_unpool2d_forward(x, indices, self.kernel_size, self.stride, self.padding,
                                                    output_size)
        return out

    def backward(self, dout):
        if self._cache is None:
            raise backward_before_forward("MaxUnpool2d")
        with errors_named("MaxUnpool2d"):
            return max_unpool2d_backward(dout, self._cache)

    def config(self):
        return {"kernel_size": jsonable(self.kernel_size), "stride": jsonable(self.stride),
                "padding": jsonable(self.padding)}


class _AdaptivePool2d(_Pool2d):
    """Shared plumbing of the adaptive pools: the output size is the one argument."""

    _forward = staticmethod(adaptive_avg_pool2d_forward)
    _backward = staticmethod(adaptive_avg_pool2d_backward)

    def __init__(self, output_size):
        Layer.__init__(self)
        with errors_named(type(self).__name__):
            output_pair(output_size)
        self.output_size = output_size
        self._cache = None

    def _kernel_args(self):
        return (self.output_size,)

    def config(self):
        return {"output_size": jsonable(self.output_size)}


@register_layer
class AdaptiveAvgPool2d(_AdaptivePool2d):
    """Average pooling to a given output size, PyTorch's windows: (N, C, H, W) -> (N, C, OH, OW).

    Parameters
    ----------
    output_size : int or pair of int or None
        (OH, OW), or one int for both; None in a pair keeps the input's size on that side.
    """


@register_layer
class AdaptiveMaxPool2d(_AdaptivePool2d):
    """Max pooling to a given output size, PyTorch's windows: (N, C, H, W) -> (N, C, OH, OW).

    Parameters
    ----------
    output_size : int or pair of int or None
        (OH, OW), or one int for both; None in a pair keeps the input's size on that side.
    """

    _forward = staticmethod(adaptive_max_pool2d_forward)
    _backward = staticmethod(adaptive_max_pool2d_backward)


@register_layer
class GlobalMaxPool2d(AdaptiveMaxPool2d):
    """Max over H and W: (N, C, H, W) -> (N, C, 1, 1) (ONNX's GlobalMaxPool)."""

    def __init__(self):
        super().__init__(1)

    def config(self):
        return {}
