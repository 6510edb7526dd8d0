"""Adaptive pooling: the output size is given and each window is fitted to it, as PyTorch does.

Output index i along an axis of length L with O outputs pools input [start_i, end_i), with
start_i = floor(i * L / O) and end_i = ceil((i + 1) * L / O): windows of varying size that
cover the axis, overlapping where O does not divide L. Both pools are separable, so each axis
is one pass:

* average: window sums from a cumulative sum (S[end] - S[start]), divided by the window's
  length; backward spreads each share back with a difference array;
* max: a loop over the longest window's taps, each a gathered slice, keeping the first maximum
  (row-major over the 2-D window, as PyTorch picks it; a NaN wins, the last one); backward adds each gradient at its
  winner.

Global max pooling is the adaptive max to 1 x 1.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .validate import check_float_array

__all__ = ["adaptive_bounds", "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
           "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward", "output_pair"]


def output_pair(output_size, x_shape=None) -> tuple:
    """output_size as (OH, OW): an int, or a pair whose None entries keep the input's size."""
    pair = (output_size, output_size) if isinstance(output_size, (int, np.integer)) or output_size is None \
        else tuple(output_size)
    if len(pair) != 2:
        raise ConfigError(f"output_size must be an int or a pair, got {output_size!r}")
    out = []
    for axis, value in enumerate(pair):
        if value is None and x_shape is not None:
            value = x_shape[2 + axis]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ConfigError(f"output_size must hold positive ints (or None), got {output_size!r}")
        out.append(None if value is None else int(value))
    return tuple(out)


def adaptive_bounds(size: int, outs: int, xp=np):
    """(start, end) int arrays (outs,): PyTorch's adaptive windows over an axis of length size."""
    i = xp.arange(outs)
    return (i * size) // outs, -((-(i + 1) * size) // outs)


def _check(x, output_size, op):
    x = check_float_array(x, op, 4)
    oh, ow = output_pair(output_size, x.shape)
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ShapeError(f"{op}: expected an input with H, W >= 1, got shape {x.shape}")
    return x, oh, ow


def _axis_mean(x, axis: int, outs: int):
    """Mean over each adaptive window along axis (2 or 3) of x (N, C, H, W)."""
    xp = get_array_module(x)
    size = x.shape[axis]
    start, end = adaptive_bounds(size, outs, xp)
    zero = xp.zeros_like(xp.take(x, [0], axis=axis))
    cum = xp.concatenate([zero, xp.cumsum(x, axis=axis)], axis=axis)
    sums = xp.take(cum, end, axis=axis) - xp.take(cum, start, axis=axis)
    shape = [1, 1, 1, 1]
    shape[axis] = outs
    return sums / (end - start).astype(x.dtype).reshape(shape)


def _axis_spread(d, axis: int, size: int):
    """Adjoint of _axis_mean: d (..., O, ...) -> (..., size, ...), each entry's share spread
    evenly over its window."""
    xp = get_array_module(d)
    outs = d.shape[axis]
    start, end = adaptive_bounds(size, outs, xp)
    shape = [1, 1, 1, 1]
    shape[axis] = outs
    share = d / (end - start).astype(d.dtype).reshape(shape)
    diff_shape = list(d.shape)
    diff_shape[axis] = size + 1
    diff = xp.zeros(diff_shape, dtype=d.dtype)
    moved, shares = xp.moveaxis(diff, axis, 0), xp.moveaxis(share, axis, 0)  # views: writes reach diff
    xp.add.at(moved, start, shares)  # a difference array: +share where a window starts,
    xp.add.at(moved, end, -shares)   # -share where it ends; its running sum is the spread
    index = [slice(None)] * 4
    index[axis] = slice(0, size)
    return xp.cumsum(diff, axis=axis)[tuple(index)]


def adaptive_avg_pool2d_forward(x, output_size):
    """Mean over each adaptive window.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.
    output_size : int or pair of int or None
        (OH, OW), or one int for both; None in a pair keeps that side of the input.

    Returns
    -------
    out : ndarray, shape (N, C, OH, OW)
        Each window's mean.
    cache : tuple
        What ``adaptive_avg_pool2d_backward`` needs.
    """
    x, oh, ow = _check(x, output_size, "adaptive_avg_pool2d")
    return _axis_mean(_axis_mean(x, 2, oh), 3, ow), (x.shape, (oh, ow))


def adaptive_avg_pool2d_backward(dout, cache):
    """Spread each window's gradient evenly over the pixels it averaged.

    Parameters
    ----------
    dout : ndarray, shape (N, C, OH, OW)
        The gradient of the output.
    cache : tuple
        What ``adaptive_avg_pool2d_forward`` returned beside its output.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        The input gradient.
    """
    x_shape, out_size = cache
    dout = check_float_array(dout, "adaptive_avg_pool2d_backward", 4, what="dout", shape=x_shape[:2] + out_size)
    return _axis_spread(_axis_spread(dout, 3, x_shape[3]), 2, x_shape[2])


def _axis_max(x, axis: int, outs: int):
    """(max, argmax) over each adaptive window along axis: argmax the input index, the first
    one holding the maximum."""
    xp = get_array_module(x)
    size = x.shape[axis]
    start, end = adaptive_bounds(size, outs, xp)
    longest = int((end - start).max())
    shape = [1, 1, 1, 1]
    shape[axis] = outs
    best = xp.take(x, start, axis=axis)
    arg = xp.broadcast_to(start.reshape(shape), best.shape).copy()
    for t in range(1, longest):  # the window's taps, each a gathered slice
        index = xp.minimum(start + t, size - 1)
        inside = (start + t < end).reshape(shape)
        value = xp.take(x, index, axis=axis)
        better = inside & ((value > best) | xp.isnan(value))  # PyTorch's rule: a NaN always wins
        best = xp.where(better, value, best)
        arg = xp.where(better, index.reshape(shape), arg)
    return best, arg


def adaptive_max_pool2d_forward(x, output_size):
    """Max over each adaptive window; ties go to the first maximum in row-major order.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.
    output_size : int or pair of int or None
        (OH, OW), or one int for both; None in a pair keeps that side of the input.

    Returns
    -------
    out : ndarray, shape (N, C, OH, OW)
        Each window's maximum.
    cache : tuple
        What ``adaptive_max_pool2d_backward`` needs: each output's winning input pixel.
    """
    xp = get_array_module(x)
    x, oh, ow = _check(x, output_size, "adaptive_max_pool2d")
    row_best, row_arg = _axis_max(x, 3, ow)            # (N, C, H, OW): the first max along each row
    out, row = _axis_max(row_best, 2, oh)              # (N, C, OH, OW): the first row holding it
    col = xp.take_along_axis(row_arg, row, axis=2)
    return out, (x.shape, row * x.shape[3] + col)


def adaptive_max_pool2d_backward(dout, cache):
    """Each window's gradient to its winner; windows that share a winner add up.

    Parameters
    ----------
    dout : ndarray, shape (N, C, OH, OW)
        The gradient of the output.
    cache : tuple
        What ``adaptive_max_pool2d_forward`` returned beside its output.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        The input gradient.
    """
    xp = get_array_module(dout)
    x_shape, flat_index = cache
    dout = check_float_array(dout, "adaptive_max_pool2d_backward", 4, what="dout",
                             shape=x_shape[:2] + flat_index.shape[2:])
    n, c, h, w = x_shape
    dx = xp.zeros((n, c, h * w), dtype=dout.dtype)
    rows = xp.arange(n * c)[:, None]
    target = dx.reshape(n * c, h * w)
    xp.add.at(target, (rows, flat_index.reshape(n * c, -1)), dout.reshape(n * c, -1))
    return dx.reshape(x_shape)
