"""Element-wise activations and softmax, forward and backward side by side.

Every function keeps its input's dtype and shape: x (...) -> (...). Each backward takes what
it needs to retain: the input for ReLU-like functions, the output for sigmoid and tanh.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module, on_host
from ..runtime import each_share
from .layout import empty_like_span, same_span, span
from .validate import check_float_array

# Elements in the block of zeros that max(x, 0) is taken against (see _max_zero).
ZERO_BLOCK = 1 << 14
_zero_blocks: dict = {}


def _pieces(fn, x) -> None:
    """fn(part) over slices of x's first axis on numcnn's threads (fn(...) for a 0-d x)."""
    if x.ndim == 0:
        fn(Ellipsis)
    else:
        each_share(fn, len(x), x.size, on_host(get_array_module(x)))


def _zeros(dtype, n: int):
    """A cached read-only block of at least n zeros of dtype (grown when a longer one is asked for)."""
    zeros = _zero_blocks.get(dtype)
    if zeros is None or len(zeros) < n:
        zeros = np.zeros(max(n, ZERO_BLOCK), dtype=dtype)
        zeros.flags.writeable = False
        _zero_blocks[dtype] = zeros
    return zeros


def _max_zero(a, out) -> None:
    """out = max(a, 0) for 1-D contiguous a and out, taken against a cached block of zeros.

    NumPy's float32 maximum against the scalar 0 runs one element at a time; against an
    array it runs in SIMD registers, several times faster (docs/design.md).
    """
    zeros = _zeros(a.dtype, ZERO_BLOCK)[:ZERO_BLOCK]
    full = len(a) - len(a) % ZERO_BLOCK
    np.maximum(a[:full].reshape(-1, ZERO_BLOCK), zeros, out=out[:full].reshape(-1, ZERO_BLOCK))
    np.maximum(a[full:], zeros[:len(a) - full], out=out[full:])


def relu(x):
    """max(x, 0), laid out in memory as x is where x is a dense view.

    Parameters
    ----------
    x : ndarray
        Float input of any shape, such as (N, C, H, W) or (N, features).

    Returns
    -------
    ndarray
        x's shape and dtype.
    """
    xp = get_array_module(x)
    x = check_float_array(x, "relu")
    if not on_host(xp) or x.ndim == 0 or x.size == 0:
        return xp.maximum(x, x.dtype.type(0), out=xp.empty_like(x))
    flat = span(x)
    if flat is None:  # a sparse or broadcast view
        x = np.ascontiguousarray(x)
        flat = x.reshape(-1)
    out, out_flat = empty_like_span(x, flat)
    # The gaps between a view's rows are computed too (and never read): no FP warnings for them.
    with np.errstate(all="ignore"):
        each_share(lambda part: _max_zero(flat[part], out_flat[part]), len(flat), len(flat))
    return out


def relu_(x):
    """x = max(x, 0) in place, as ``relu`` computes it: the ReLU a layer fused with it applies to
    a block of its output while the block is in cache. x: (N, C, ...) or (M, L) -> x.

    Taken against a block of zeros shaped as x's trailing axes (those after the channel axis,
    or the last one of a 2-D array), so NumPy runs its SIMD loop over each contiguous stretch;
    split over numcnn's threads along the first axis (serially inside a kernel's own piece).
    """
    xp = get_array_module(x)
    if not on_host(xp) or x.ndim == 0 or x.size == 0:
        return xp.maximum(x, x.dtype.type(0), out=x)
    trailing = x.shape[min(2, x.ndim - 1):]
    zeros = _zeros(x.dtype, math.prod(trailing))[:math.prod(trailing)].reshape(trailing)
    # No errstate needed: maximum raises no floating-point warnings, NaN and inf included.
    _pieces(lambda part: np.maximum(x[part], zeros, out=x[part]), x)
    return x


def relu_backward(dout, x):
    """dout * [x > 0].

    Parameters
    ----------
    dout : ndarray
        The gradient of the output, of the forward input's shape (N, ...).
    x : ndarray
        The forward input, of dout's shape.

    Returns
    -------
    dx : ndarray
        dout's shape, laid out as dout where dout and x share a dense layout (a convolution's
        output and the next one's input gradient often do).
    """
    xp = get_array_module(dout)
    flat_dout, flat_x = same_span(dout, x) if on_host(xp) else (None, None)
    if flat_dout is not None:
        dx, flat_dx = empty_like_span(dout, flat_dout)
        with np.errstate(all="ignore"):  # the gaps between rows hold anything
            each_share(lambda part: np.multiply(flat_dout[part], flat_x[part] > 0, out=flat_dx[part]),
                       len(flat_dx), len(flat_dx))
        return dx
    dx = xp.empty_like(dout)
    # A product with the mask: several times faster than np.where.
    _pieces(lambda part: xp.multiply(dout[part], x[part] > 0, out=dx[part]), dout)
    return dx


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x.

    Parameters
    ----------
    x : ndarray
        Float input of any shape, such as (N, C, H, W) or (N, features).
    negative_slope : float, default 0.01
        The slope for x <= 0.

    Returns
    -------
    ndarray
        x's shape and dtype.
    """
    xp = get_array_module(x)
    x = check_float_array(x, "leaky_relu")
    return xp.where(x > 0, x, x * x.dtype.type(negative_slope))


def leaky_relu_backward(dout, x, negative_slope=0.01):
    """dout where x > 0, else negative_slope * dout.

    Parameters
    ----------
    dout : ndarray
        The gradient of the output, of the forward input's shape (N, ...).
    x : ndarray
        The forward input, of dout's shape.
    negative_slope : float, default 0.01
        The slope for x <= 0.

    Returns
    -------
    dx : ndarray
        dout's shape.
    """
    xp = get_array_module(x)
    return xp.where(x > 0, dout, dout * dout.dtype.type(negative_slope))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed from ``exp(-|x|)`` so it never overflows.

    Parameters
    ----------
    x : ndarray
        Float input of any shape, such as (N, C, H, W) or (N, features).

    Returns
    -------
    ndarray
        x's shape and dtype, in (0, 1).
    """
    xp = get_array_module(x)
    x = check_float_array(x, "sigmoid")
    e = xp.exp(-xp.abs(x))
    one = x.dtype.type(1)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


def sigmoid_backward(dout, y):
    """dout * y * (1 - y), with y the forward output.

    Parameters
    ----------
    dout : ndarray
        The gradient of the output, of the forward input's shape (N, ...).
    y : ndarray
        The forward output, of dout's shape.

    Returns
    -------
    dx : ndarray
        dout's shape.
    """
    return dout * y * (y.dtype.type(1) - y)


def tanh(x):
    """Hyperbolic tangent.

    Parameters
    ----------
    x : ndarray
        Float input of any shape, such as (N, C, H, W) or (N, features).

    Returns
    -------
    ndarray
        x's shape and dtype, in (-1, 1).
    """
    xp = get_array_module(x)
    x = check_float_array(x, "tanh")
    return xp.tanh(x)


def tanh_backward(dout, y):
    """dout * (1 - y^2), with y the forward output.

    Parameters
    ----------
    dout : ndarray
        The gradient of the output, of the forward input's shape (N, ...).
    y : ndarray
        The forward output, of dout's shape.

    Returns
    -------
    dx : ndarray
        dout's shape.
    """
    return dout * (y.dtype.type(1) - y * y)


def log_softmax(x, axis=1):
    """log(softmax(x)) along axis, shifted by the max so it stays finite.

    Parameters
    ----------
    x : ndarray, shape (N, K)
        Float scores (or any shape with a class axis).
    axis : int, default 1
        The class axis: each slice along it is normalised on its own.

    Returns
    -------
    ndarray, shape (N, K)
        x's shape and dtype.
    """
    xp = get_array_module(x)
    x = check_float_array(x, "log_softmax")
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x, axis=1):
    """exp(x) / sum(exp(x)) along axis (each row of a batch separately).

    Parameters
    ----------
    x : ndarray, shape (N, K)
        Float scores (or any shape with a class axis).
    axis : int, default 1
        The class axis: each slice along it is normalised on its own.

    Returns
    -------
    ndarray, shape (N, K)
        x's shape and dtype; each slice along axis sums to 1.
    """
    xp = get_array_module(x)
    x = check_float_array(x, "softmax")
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(dout, y, axis=1):
    """Vector-Jacobian product of softmax: y * (dout - sum(dout * y)), with y the output.

    Parameters
    ----------
    dout : ndarray, shape (N, K)
        The gradient of the output.
    y : ndarray, shape (N, K)
        The forward output.
    axis : int, default 1
        The class axis: each slice along it is normalised on its own.

    Returns
    -------
    dx : ndarray, shape (N, K)
        The input gradient.
    """
    return y * (dout - (dout * y).sum(axis=axis, keepdims=True))
