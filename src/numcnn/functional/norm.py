"""Batch normalisation, forward and backward side by side.

Statistics are per channel, over every axis but the channel axis 1:
x (N, C) or (N, C, L) or (N, C, H, W).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..errors import ShapeError
from .validate import check_float_array


def batch_norm_forward(x, weight, bias, running_mean, running_var, training=True,
                       momentum=0.1, eps=1e-5, num_batches_tracked=None):
    """Normalise each channel, then scale by weight and shift by bias.

    x            : (N, C, *spatial)
    weight, bias : (C,)
    running_mean, running_var : (C,), read, never written
    returns      : out (same shape as x, x's dtype), the cache for backward, and the new
                   (running_mean, running_var), each (C,) in the dtype of the ones given
    Training mode normalises with the batch statistics and returns running statistics moved
    towards them, as PyTorch does: running = (1 - momentum) * running + momentum * batch_stat,
    with the unbiased batch variance; momentum=None gives the cumulative average over
    num_batches_tracked batches. Eval mode normalises with the running statistics and returns
    them as they were. The caller keeps what it is given back: the kernel owns no state.
    """
    xp = get_array_module(x)
    x = check_float_array(x, "batch_norm")
    dtype = x.dtype
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        count = x.size // x.shape[1]
        if count < 2:
            raise ShapeError(f"batch_norm: training needs more than 1 value per channel, got input {x.shape}")
        mean = x.mean(axis=axes)
        x_hat = x - mean.reshape(shape)  # centred now, normalised in place below
        var = xp.square(x_hat).mean(axis=axes)
        factor = 1.0 / float(num_batches_tracked) if momentum is None else momentum

        def moved(old, stat, scale=1.0):
            return ((1 - factor) * old + factor * stat * scale).astype(old.dtype, copy=False)

        running = moved(running_mean, mean), moved(running_var, var, count / (count - 1))
    else:
        running = (running_mean, running_var)
        x_hat = x - running_mean.astype(dtype, copy=False).reshape(shape)
        var = running_var.astype(dtype, copy=False)
    inv_std = (1 / xp.sqrt(var + dtype.type(eps))).astype(dtype, copy=False)
    x_hat *= inv_std.reshape(shape)
    w = weight.astype(dtype, copy=False)
    out = x_hat * w.reshape(shape)
    out += bias.astype(dtype, copy=False).reshape(shape)
    return out, (x_hat, inv_std, w, training, axes, shape), running


def batch_norm_backward(dout, cache):
    """Gradients of batch_norm_forward.

    dout   : same shape as x
    returns: dx (same shape), dweight (C,), dbias (C,)
    In training mode the batch statistics depend on x, which adds the two mean terms.
    """
    xp = get_array_module(dout)
    x_hat, inv_std, w, training, axes, shape = cache
    dbias = dout.sum(axis=axes)
    dweight = (dout * x_hat).sum(axis=axes)
    scale = (w * inv_std).reshape(shape)
    if not training:
        return dout * scale, dweight, dbias
    count = x_hat.size // x_hat.shape[1]
    # dx = scale * (dout - mean(dout) - x_hat * mean(dout * x_hat)), in three in-place passes
    dx = x_hat * (dweight / count).reshape(shape)
    xp.subtract(dout, dx, out=dx)
    dx -= (dbias / count).reshape(shape)
    dx *= scale
    return dx, dweight, dbias
