"""2-D convolution (cross-correlation, as in PyTorch), forward and backward side by side.

Per sample, the convolution is one GEMM over unfolded patches:

    out[n] = W_mat @ col[n]        W_mat: (F, C*KH*KW), col[n]: (C*KH*KW, OH*OW)

which is the textbook's ``col @ W.T`` with the product transposed. Keeping the per-sample
orientation means the GEMM writes NCHW output directly, where the textbook layout needs an
output transpose (and its mirror in backward). Groups add a leading group axis to both
operands, so grouped and depthwise convolutions use the same batched matmul.

The column buffer is built in batch chunks of at most ``COL_BUDGET_BYTES``, so memory stays
bounded at any batch size; when the whole batch fits in one chunk the columns are kept for
backward instead of being rebuilt.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ._validate import check_float_array
from ._window import Window, make_window, pad, unpad
from .im2col import fold, unfold

COL_BUDGET_BYTES = 64 * 2**20


def _chunks(n: int, bytes_per_sample: int):
    """Batch slices whose column buffers each stay under COL_BUDGET_BYTES."""
    step = max(1, min(n, COL_BUDGET_BYTES // max(1, bytes_per_sample)))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _is_pointwise(win: Window) -> bool:
    """1x1 kernel, stride 1, no padding: the input already is the column matrix."""
    return win.kh == win.kw == 1 and win.sh == win.sw == 1 and not any(win.pads)


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlate x with weight, as one batched GEMM over unfolded patches.

    x      : (N, C, H, W)
    weight : (F, C // groups, KH, KW)
    bias   : (F,) or None
    padding: int, (PH, PW), "valid" or "same"
    returns: out (N, F, OH, OW) with OH = (H + 2*PH - DH*(KH-1) - 1) // SH + 1, and the cache
             for ``conv2d_backward``. out has x's dtype.
    """
    x = check_float_array(x, "conv2d", 4)
    weight = check_float_array(weight, "conv2d", 4, what="weight")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ConfigError(f"conv2d: groups must be a positive int, got {groups!r}")
    n, c, h, w = x.shape
    f, cg, kh, kw = weight.shape
    if c != cg * groups:
        raise ShapeError(f"conv2d: expected input with {cg * groups} channels (weight {weight.shape}, "
                         f"groups={groups}), got input of shape {x.shape}")
    if f % groups:
        raise ShapeError(f"conv2d: out channels {f} are not divisible by groups={groups}")
    if bias is not None:
        bias = check_float_array(bias, "conv2d", 1, what="bias")
        if bias.shape != (f,):
            raise ShapeError(f"conv2d: expected bias of shape ({f},), got {bias.shape}")
    win = make_window(x.shape, (kh, kw), stride, padding, dilation, "conv2d")

    dtype = x.dtype
    w_mat = weight.astype(dtype, copy=False).reshape(groups, f // groups, cg * kh * kw)
    x_pad = pad(x, win.pads)
    p = win.oh * win.ow
    out = np.empty((n, f, p), dtype=dtype)
    kept_col = None
    if _is_pointwise(win):
        np.matmul(w_mat, x_pad.reshape(n, groups, cg, p), out=out.reshape(n, groups, f // groups, p))
    else:
        chunks = _chunks(n, c * kh * kw * p * x.itemsize)
        for part in chunks:
            nb = part.stop - part.start
            col = unfold(x_pad[part], win).reshape(nb, groups, cg * kh * kw, p)
            np.matmul(w_mat, col, out=out[part].reshape(nb, groups, f // groups, p))
        if len(chunks) == 1:
            kept_col = col  # retain the columns: rebuilding them costs as much as the copy in forward
    if bias is not None:
        out += bias.astype(dtype, copy=False)[:, None]
    cache = (x_pad, w_mat, weight.shape, win, groups, bias is not None, kept_col)
    return out.reshape(n, f, win.oh, win.ow), cache


def conv2d_backward(dout, cache):
    """Gradients of conv2d_forward.

    dout   : (N, F, OH, OW)
    returns: dx (N, C, H, W), dweight (F, C // groups, KH, KW), dbias (F,) or None, all in
             dout's dtype (the forward input's dtype)
    """
    x_pad, w_mat, w_shape, win, groups, has_bias, kept_col = cache
    n, c = x_pad.shape[:2]
    f, cg, kh, kw = w_shape
    p = win.oh * win.ow
    dtype = x_pad.dtype
    dout = check_float_array(dout, "conv2d_backward", 4, what="dout")
    if dout.shape != (n, f, win.oh, win.ow):
        raise ShapeError(f"conv2d_backward: expected dout of shape {(n, f, win.oh, win.ow)}, got {dout.shape}")
    d3 = dout.astype(dtype, copy=False).reshape(n, groups, f // groups, p)
    db = dout.sum(axis=(0, 2, 3), dtype=dtype) if has_bias else None
    w_t = w_mat.transpose(0, 2, 1)  # (G, Cg*KH*KW, F/G)

    if _is_pointwise(win):
        col = x_pad.reshape(n, groups, cg, p)
        dw = np.matmul(d3, col.transpose(0, 1, 3, 2)).sum(axis=0)
        dx = np.matmul(w_t, d3).reshape(x_pad.shape)
        return dx, dw.reshape(w_shape), db

    dw = np.zeros(w_mat.shape, dtype=dtype)
    dx_pad = np.empty(x_pad.shape, dtype=dtype)
    for part in _chunks(n, c * kh * kw * p * x_pad.itemsize):
        nb = part.stop - part.start
        col = kept_col if kept_col is not None else unfold(x_pad[part], win).reshape(nb, groups, cg * kh * kw, p)
        dw += np.matmul(d3[part], col.transpose(0, 1, 3, 2)).sum(axis=0)
        dcol = np.matmul(w_t, d3[part]).reshape(nb, c, kh, kw, win.oh, win.ow)
        fold(dcol, dx_pad[part].shape, win, out=dx_pad[part])
    return unpad(dx_pad, win.pads), dw.reshape(w_shape), db


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Forward convolution only; see ``conv2d_forward`` for shapes."""
    return conv2d_forward(x, weight, bias, stride, padding, dilation, groups)[0]
