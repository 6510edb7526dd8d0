"""Read this first: convolution and pooling as the textbook writes them, im2col, one GEMM, col2im.

Plain NumPy, no threads, no layout tricks: the algorithm the fast kernels (``conv``,
``pool``) compute, in the fewest lines that still state it fully. Square kernels, one stride
and one padding for both axes, no dilation or groups. The tests check the fast kernels against
these functions; the notebooks build them step by step.

::

    x    : (N, C, H, W)
    w    : (F, C, K, K),  b: (F,)
    out  : (N, F, OH, OW),  OH = (H + 2*pad - K) // stride + 1
    col  : (N*OH*OW, C*K*K), one row per output pixel, the patch under it
"""

from __future__ import annotations

import numpy as np

__all__ = ["im2col", "col2im", "conv_forward", "conv_backward", "max_pool_forward", "max_pool_backward",
           "avg_pool_forward", "avg_pool_backward"]


def im2col(x, k, stride=1, pad=0):
    """(N, C, H, W) -> col (N*OH*OW, C*K*K): a loop over the K*K kernel taps, never over pixels."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.empty((n, c, k, k, oh, ow), dtype=x.dtype)
    for i in range(k):          # tap (i, j) sees the pixels i, i+stride, ... below the window's top
        for j in range(k):
            col[:, :, i, j] = img[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)


def col2im(col, x_shape, k, stride=1, pad=0):
    """The adjoint of im2col: col (N*OH*OW, C*K*K) -> (N, C, H, W), overlapping patches summed."""
    n, c, h, w = x_shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    col = col.reshape(n, oh, ow, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=col.dtype)
    for i in range(k):
        for j in range(k):
            img[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += col[:, :, i, j]
    return img[:, :, pad:pad + h, pad:pad + w]


def conv_forward(x, w, b, stride=1, pad=0):
    """out (N, F, OH, OW) = the patches times the filters, plus the bias; and what backward needs."""
    n, _, h, width = x.shape
    f, _, k, _ = w.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (width + 2 * pad - k) // stride + 1
    col = im2col(x, k, stride, pad)
    col_w = w.reshape(f, -1).T                      # (C*K*K, F)
    out = col @ col_w + b                           # the one GEMM: (N*OH*OW, F)
    return out.reshape(n, oh, ow, f).transpose(0, 3, 1, 2), (x.shape, col, col_w, w.shape, stride, pad)


def conv_backward(dout, cache):
    """dout (N, F, OH, OW) -> dx (N, C, H, W), dw (F, C, K, K), db (F,)."""
    x_shape, col, col_w, w_shape, stride, pad = cache
    dout = dout.transpose(0, 2, 3, 1).reshape(-1, w_shape[0])     # (N*OH*OW, F)
    db = dout.sum(axis=0)
    dw = (col.T @ dout).T.reshape(w_shape)
    dx = col2im(dout @ col_w.T, x_shape, w_shape[2], stride, pad)
    return dx, dw, db


def max_pool_forward(x, k, stride=None, pad=0):
    """(N, C, H, W) -> (N, C, OH, OW): im2col per channel, then the max of each row (argmax kept)."""
    stride = stride or k
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    col = im2col(np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], constant_values=-np.inf), k, stride)
    col = col.reshape(-1, k * k)                    # one row per (output pixel, channel)
    arg = col.argmax(axis=1)
    out = col[np.arange(len(col)), arg]
    return out.reshape(n, oh, ow, c).transpose(0, 3, 1, 2), (x.shape, arg, k, stride, pad)


def max_pool_backward(dout, cache):
    """Each window's gradient goes to its winner: dout (N, C, OH, OW) -> dx (N, C, H, W)."""
    (n, c, h, w), arg, k, stride, pad = cache
    dcol = np.zeros((arg.size, k * k), dtype=dout.dtype)
    dcol[np.arange(arg.size), arg] = dout.transpose(0, 2, 3, 1).reshape(-1)
    dx = col2im(dcol.reshape(-1, c * k * k), (n, c, h + 2 * pad, w + 2 * pad), k, stride)
    return dx[:, :, pad:pad + h, pad:pad + w]


def avg_pool_forward(x, k, stride=None, pad=0):
    """The mean of each window, padding counted as zeros (PyTorch's count_include_pad=True)."""
    stride = stride or k
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    out = im2col(x, k, stride, pad).reshape(-1, c, k * k).mean(axis=2)
    return out.reshape(n, oh, ow, c).transpose(0, 3, 1, 2), (x.shape, k, stride, pad)


def avg_pool_backward(dout, cache):
    """Each window's gradient spread evenly over its K*K pixels."""
    x_shape, k, stride, pad = cache
    c = x_shape[1]
    share = dout.transpose(0, 2, 3, 1).reshape(-1, c, 1) / (k * k)
    return col2im(np.broadcast_to(share, share.shape[:2] + (k * k,)).reshape(-1, c * k * k), x_shape, k, stride, pad)
