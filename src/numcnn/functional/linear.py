"""The fully connected layer (the textbook's Affine), forward and backward side by side."""

from __future__ import annotations

import math

from ..backend import get_array_module, on_host
from ..errors import ShapeError
from ..runtime import PIECES, holds_blas, run_chunks, split
from .validate import check_float_array, check_same_device

# Below this many multiply-adds a product is not worth handing to other threads.
_PARALLEL_MIN_MACS = 1 << 23
# Every row block reads all of b: blocks thinner than this read it too often for what they compute.
_MIN_BLOCK_ROWS = 32


def _matmul(a, b):
    """a (M, K) @ b (K, P) -> (M, P); a large product is cut into up to PIECES row blocks of at
    least _MIN_BLOCK_ROWS rows, run on numcnn's threads.

    The cut depends on the shapes alone, so the result is the same with any thread count.
    """
    xp = get_array_module(a)
    m, k = a.shape
    blocks = min(PIECES, m // _MIN_BLOCK_ROWS)
    if not on_host(xp) or blocks < 2 or m * k * b.shape[1] < _PARALLEL_MIN_MACS:
        return xp.matmul(a, b)
    out = xp.empty((m, b.shape[1]), dtype=xp.result_type(a, b))

    def rows(part):
        xp.matmul(a[part], b, out=out[part])
    run_chunks(rows, split(m, blocks))
    return out


@holds_blas
def linear_forward(x, weight, bias=None):
    """y = x W^T + b over the flattened features of each sample.

    Parameters
    ----------
    x : ndarray, shape (N, ...)
        Float input whose non-batch axes hold in_features numbers in all.
    weight : ndarray, shape (out_features, in_features)
        The weight, PyTorch's layout.
    bias : ndarray, shape (out_features,), optional
        Added to each output; None for none.

    Returns
    -------
    out : ndarray, shape (N, out_features)
        In x's dtype.
    cache : tuple
        What ``linear_backward`` needs.
    """
    x = check_float_array(x, "linear")
    weight = check_float_array(weight, "linear", 2, what="weight")
    check_same_device("linear", x, weight=weight, bias=bias)
    if x.ndim < 2 or math.prod(x.shape[1:]) != weight.shape[1]:
        raise ShapeError(f"linear: expected input (N, ...) with {weight.shape[1]} features per sample, "
                         f"got shape {x.shape}")
    x2 = x.reshape(x.shape[0], weight.shape[1])  # not -1: an empty batch (N = 0) has no size to infer from
    w = weight.astype(x.dtype, copy=False)
    out = _matmul(x2, w.T)
    if bias is not None:
        out += bias.astype(x.dtype, copy=False)
    # Retain only the flattened input (for dW) and the weight (for dx).
    return out, (x2, x.shape, w, bias is not None)


@holds_blas
def linear_backward(dout, cache, input_grad=True):
    """Gradients of linear_forward.

    Parameters
    ----------
    dout : ndarray, shape (N, out_features)
        The gradient of the output.
    cache : tuple
        What ``linear_forward`` returned beside its output.
    input_grad : bool, default True
        With False, dx is not computed (None), as in ``conv2d_backward``.

    Returns
    -------
    dx : ndarray, shape (N, ...), or None
        In the input's shape; None when input_grad is False.
    dweight : ndarray, shape (out_features, in_features)
        The weight gradient.
    dbias : ndarray, shape (out_features,), or None
        None when forward had no bias.
    """
    x2, x_shape, w, has_bias = cache
    dout = check_float_array(dout, "linear_backward", 2, what="dout")
    if dout.shape != (x2.shape[0], w.shape[0]):
        raise ShapeError(f"linear_backward: expected dout of shape {(x2.shape[0], w.shape[0])}, got {dout.shape}")
    dout = dout.astype(x2.dtype, copy=False)
    dweight = _matmul(dout.T, x2)
    dbias = dout.sum(axis=0) if has_bias else None
    dx = _matmul(dout, w).reshape(x_shape) if input_grad else None
    return dx, dweight, dbias
