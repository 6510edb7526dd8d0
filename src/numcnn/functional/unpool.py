"""Max pooling's indices, and max unpooling: the winners' positions, and a map put back at them.

``max_pool2d_indices`` turns the winning tap that ``max_pool2d_forward`` keeps for backward into
PyTorch's indices: for each output, the flat position h * W + w of its winner in its own input
plane. ``max_unpool2d`` is the adjoint-like inverse PyTorch calls MaxUnpool2d: a zero map of the
pooled input's size, each value written back at its index (a later duplicate index wins, as the
last write does in PyTorch on the CPU); its backward gathers the gradient from those positions.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .pool import pool_params
from .validate import check_float_array

__all__ = ["max_pool2d_indices", "unpool_size", "max_unpool2d_forward", "max_unpool2d_backward"]


def max_pool2d_indices(cache) -> np.ndarray:
    """The winners of a max pool as flat indices into each (H, W) input plane.

    Parameters
    ----------
    cache : tuple
        What ``max_pool2d_forward`` returned beside its output.

    Returns
    -------
    ndarray, shape (N, C, OH, OW)
        int64 indices, row * W + column, as ``max_unpool2d_forward`` takes them.
    """
    arg, x_shape, _, win = cache
    xp = get_array_module(arg)
    i, j = arg // win.kw, arg % win.kw
    rows = xp.arange(win.oh).reshape(-1, 1) * win.sh - win.pads[0] + i.astype(np.int64) * win.dh
    cols = xp.arange(win.ow).reshape(1, -1) * win.sw - win.pads[2] + j.astype(np.int64) * win.dw
    return rows * x_shape[3] + cols


def unpool_size(pooled: tuple[int, int], kernel_size, stride=None, padding=0) -> tuple[int, int]:
    """The default output (H, W) of max unpooling: (OH - 1) * stride - 2 * padding + kernel."""
    kernel, stride, pads, _ = pool_params(kernel_size, stride, padding, "max_unpool2d")
    if pads == "same":
        raise ConfigError("max_unpool2d: with padding='same' the output size is not known; give output_size")
    return tuple((pooled[a] - 1) * stride[a] - pads[2 * a] - pads[2 * a + 1] + kernel[a] for a in range(2))


def max_unpool2d_forward(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value of x back at its index in a zero map.

    Parameters
    ----------
    x : ndarray, shape (N, C, OH, OW)
        Float input: a max pool's output.
    indices : ndarray, shape (N, C, OH, OW)
        Integer flat positions in an (H, W) plane (``max_pool2d_indices``).
    kernel_size : int or pair of int
        The max pool's (KH, KW).
    stride : int, pair of int or None, default None
        The max pool's (SH, SW); None is the kernel size.
    padding : int, pair or 4-tuple, default 0
        The max pool's padding.
    output_size : tuple of int, optional
        (H, W), or a longer shape ending in them; None is ``unpool_size``'s
        (OH - 1) * stride - 2 * padding + kernel.

    Returns
    -------
    out : ndarray, shape (N, C, H, W)
        Zero except at the indices.
    cache : tuple
        What ``max_unpool2d_backward`` needs.
    """
    xp = get_array_module(x)
    x = check_float_array(x, "max_unpool2d", 4)
    indices = xp.asarray(indices)
    if indices.shape != x.shape:
        raise ShapeError(f"max_unpool2d: expected indices of the input's shape {x.shape}, got {indices.shape}")
    h, w = (unpool_size(x.shape[2:], kernel_size, stride, padding) if output_size is None
            else tuple(int(s) for s in tuple(output_size)[-2:]))
    n, c = x.shape[:2]
    flat = indices.reshape(n * c, -1).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= h * w):
        raise ShapeError(f"max_unpool2d: an index is outside the {h}x{w} output (found {int(flat.min())} to "
                         f"{int(flat.max())}); give output_size")
    out = xp.zeros((n * c, h * w), dtype=x.dtype)
    rows = xp.arange(n * c).reshape(-1, 1)
    out[rows, flat] = x.reshape(n * c, -1)
    return out.reshape(n, c, h, w), (flat, x.shape)


def max_unpool2d_backward(dout, cache):
    """The gradient at each value's index.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H, W)
        The gradient of the output.
    cache : tuple
        What ``max_unpool2d_forward`` returned beside its output.

    Returns
    -------
    dx : ndarray, shape (N, C, OH, OW)
        The input gradient.
    """
    xp = get_array_module(dout)
    flat, x_shape = cache
    dout = check_float_array(dout, "max_unpool2d_backward", 4, what="dout")
    rows = xp.arange(flat.shape[0]).reshape(-1, 1)
    return dout.reshape(flat.shape[0], -1)[rows, flat].reshape(x_shape)
