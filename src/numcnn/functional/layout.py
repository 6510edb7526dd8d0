"""Memory layouts for element-wise passes: run them over the memory an array lies in.

Layers hand each other strided views (a convolution's output is a channel-major buffer whose
rows carry a few extra columns, seen as NCHW). An element-wise pass over such a view iterates
rows a few dozen elements long; the same pass over the flat block of memory the view covers is
one long contiguous loop, several times faster, and its result takes the view's strides over a
new block of the same size. The few elements in the gaps are computed too, and never read.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Above this fraction of gap elements, a pass over the span does too much extra work.
MAX_GAP = 0.25
# copy_rows moves rows up to this long as blocks of bytes, where NumPy's strided copy, which
# pays per row, is slower (the timings: docs/design.md).
SHORT_ROW_BYTES = 256


def span(x):
    """The contiguous block of memory x's elements lie in, as a 1-D view, or None.

    Parameters
    ----------
    x
        a NumPy array (..., any strides) -> (S,) with S >= x.size, the elements from x's first
    to its last in memory. None when x is empty or 0-d, has negative or overlapping strides
    (a broadcast view), or leaves more than MAX_GAP of the block unused (a sliced view).
    """
    if not isinstance(x, np.ndarray) or x.ndim == 0 or x.size == 0:
        return None
    item = x.itemsize
    extent = 1  # elements spanned by the axes taken so far, innermost first
    for stride, n in sorted((s, n) for s, n in zip(x.strides, x.shape) if n > 1):
        if stride % item or stride // item < extent:
            return None  # negative, misaligned, or overlapping the block so far
        extent += (n - 1) * (stride // item)
    if extent > x.size * (1 + MAX_GAP):
        return None
    return as_strided(x, shape=(extent,), strides=(item,))


def empty_like_span(x, flat):
    """A new array shaped and strided as x, and its flat block (shaped as flat = span(x)).

    Returns (out, out_flat): out (x.shape, x's strides) is a view of out_flat (S,), so a pass
    writing out_flat fills out element for element as a pass reading flat reads x.
    """
    out_flat = np.empty(flat.shape, dtype=flat.dtype)
    return as_strided(out_flat, shape=x.shape, strides=x.strides), out_flat


def same_span(a, b):
    """The spans of a and b when both exist and line up element for element, else (None, None).

    a and b: arrays of one shape; they line up when their strides are equal.
    """
    if a.shape != b.shape or a.strides != b.strides or a.itemsize != b.itemsize:
        return None, None
    fa, fb = span(a), span(b)
    return (fa, fb) if fa is not None and fb is not None else (None, None)


def copy_rows(dst, src) -> None:
    """dst[...] = src; short contiguous rows (the last axis) are moved as blocks of bytes.

    Parameters
    ----------
    dst, src
        (..., W) of one shape and dtype, any strides on the other axes. NumPy copies a
    strided array row by row, and a short row costs about as much as a long one: a 128x32x8x8
    view whose rows are 9 apart took 260 us. Seen as one W-element record per row, it takes
    75 us (128x8x32x32: 310 against 140). Rows longer than SHORT_ROW_BYTES copy faster as they
    are, and so do other arrays (a CuPy one, a strided last axis).
    """
    if (isinstance(dst, np.ndarray) and isinstance(src, np.ndarray) and dst.ndim and dst.size > 1
            and dst.dtype == src.dtype and dst.shape == src.shape
            and dst.strides[-1] == src.strides[-1] == dst.itemsize
            and dst.shape[-1] * dst.itemsize <= SHORT_ROW_BYTES):
        row = np.dtype((np.void, dst.shape[-1] * dst.itemsize))
        np.copyto(dst.view(row), src.view(row))
    else:
        dst[...] = src
