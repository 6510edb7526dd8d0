"""im2col and col2im: unfold input patches into a matrix so that convolution is one GEMM.

The textbook lays patches out as a (N*OH*OW, C*KH*KW) matrix, one row per output pixel, and
that is what ``im2col``/``col2im`` return and take. ``unfold``/``fold`` build it one kernel tap
(i, j) at a time, each tap one strided slice of the padded input, never a loop over pixels.
The convolution kernels (conv.py) use the same idea in a layout tuned for speed; the textbook's
convolution built on it, in a page, is ``functional.reference``."""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .validate import check_float_array
from .window import Window, make_window, pad, padded_shape, unpad


def unfold(x_pad: np.ndarray, win: Window) -> np.ndarray:
    """Copy every kernel tap of an already padded input into a column buffer.

    Parameters
    ----------
    x_pad : ndarray, shape (N, C, Hp, Wp)
        Padded by win.pads.

    Returns
    -------
    ndarray, shape (N, C, KH, KW, OH, OW)
        Reshaping it to (N, C*KH*KW, OH*OW) is free.
    """
    xp = get_array_module(x_pad)
    n, c = x_pad.shape[:2]
    out = xp.empty((n, c, win.kh, win.kw, win.oh, win.ow), dtype=x_pad.dtype)
    for i, j, rows, cols in win.offsets():
        out[:, :, i, j] = x_pad[:, :, rows, cols]
    return out


def fold(col: np.ndarray, padded_shape: tuple[int, ...], win: Window) -> np.ndarray:
    """Adjoint of ``unfold``: scatter-add every tap back onto the padded input grid.

    Parameters
    ----------
    col : ndarray, shape (N, C, KH, KW, OH, OW)
        As ``unfold`` makes it.

    Returns
    -------
    ndarray, shape (N, C, Hp, Wp)
        Overlapping windows accumulate.
    """
    xp = get_array_module(col)
    x_pad = xp.zeros(padded_shape, dtype=col.dtype)
    for i, j, rows, cols in win.offsets():
        x_pad[:, :, rows, cols] += col[:, :, i, j]
    return x_pad


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Unfold input patches into rows, the textbook layout.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.
    kernel_size : int or pair of int
        (KH, KW).
    stride : int or pair of int, default 1
        (SH, SW).
    padding : int, pair, 4-tuple, "valid" or "same", default 0
        Zero padding, as ``resolve_padding`` reads it: (PH, PW) for a pair.
    dilation : int or pair of int, default 1
        (DH, DW), the spacing of the kernel's taps.

    Returns
    -------
    col : ndarray, shape (N*OH*OW, C*KH*KW)
        Row (n, oh, ow) holds the patch under output pixel (oh, ow), columns ordered
        (c, kh, kw), so ``col @ W.reshape(F, -1).T`` is the convolution.
        OH = (H + 2*PH - DH*(KH-1) - 1) // SH + 1, likewise OW. Keeps x.dtype.
    """
    x = check_float_array(x, "im2col", 4)
    win = make_window(x.shape, kernel_size, stride, padding, dilation, "im2col")
    n, c = x.shape[:2]
    col = unfold(pad(x, win.pads), win).reshape(n, c * win.kh * win.kw, win.oh * win.ow)
    return col.transpose(0, 2, 1).reshape(n * win.oh * win.ow, -1)


def col2im(col: np.ndarray, x_shape, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Fold rows of patches back into an image, summing where patches overlap.

    Parameters
    ----------
    col : ndarray, shape (N*OH*OW, C*KH*KW)
        As produced by ``im2col`` for an input of shape x_shape.
    x_shape : tuple of int, shape (4,)
        (N, C, H, W), the shape of the image to fold into.
    kernel_size, stride, padding, dilation
        As given to ``im2col``.

    Returns
    -------
    ndarray, shape (N, C, H, W)
        The adjoint of im2col: <im2col(x), col> == <x, col2im(col)>.
    """
    xp = get_array_module(col)
    col = check_float_array(col, "col2im", 2, what="col")
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"col2im: x_shape must be (N, C, H, W), got {x_shape}")
    n, c = x_shape[:2]
    win = make_window(x_shape, kernel_size, stride, padding, dilation, "col2im")
    expected = (n * win.oh * win.ow, c * win.kh * win.kw)
    if col.shape != expected:
        raise ValueError(f"col2im: expected col of shape {expected} for x_shape {x_shape}, got {col.shape}")
    col6 = col.reshape(n, win.oh, win.ow, c, win.kh, win.kw).transpose(0, 3, 4, 5, 1, 2)
    return xp.ascontiguousarray(unpad(fold(col6, padded_shape(x_shape, win.pads), win), win.pads))
