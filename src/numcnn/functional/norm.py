"""Batch normalisation, forward and backward side by side.

Statistics are per channel, over every axis but the channel axis 1:
x (N, C) or (N, C, L) or (N, C, H, W).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module, on_host
from ..errors import ShapeError
from ..runtime import pieces, run_chunks
from . import activation
from .layout import copy_rows, span
from .validate import check_float_array, check_same_device


def batch_norm_forward(x, weight, bias, running_mean, running_var, training=True,
                       momentum=0.1, eps=1e-5, num_batches_tracked=None, reduce=None, relu=False):
    r"""Normalise each channel, then scale by weight and shift by bias.

    Training mode normalises with the batch statistics and returns running statistics moved
    towards them, as PyTorch does: running = (1 - momentum) * running + momentum * batch_stat,
    with the unbiased batch variance; momentum=None gives the cumulative average over
    num_batches_tracked batches. Eval mode normalises with the running statistics and returns
    them as they were. The caller keeps what it is given back: the kernel owns no state.
    The cache holds x itself (not a copy): x must not be changed in place before backward.

    An empty batch (N = 0, on every process) is not an error, as in PyTorch: it gives an empty
    output, the running statistics unchanged, and in backward zero weight and bias gradients.

    Parameters
    ----------
    x : ndarray, shape (N, C, \*spatial)
        Float input: (N, C) after a linear layer, (N, C, H, W) after a convolution.
    weight, bias : ndarray, shape (C,)
        The per-channel scale and shift.
    running_mean, running_var : ndarray, shape (C,)
        The running statistics: read, never written.
    training : bool, default True
        Normalise with the batch's statistics (and move the running ones), or with the running ones.
    momentum : float or None, default 0.1
        The weight of the batch's statistics in the running ones; None for a cumulative average.
    eps : float, default 1e-5
        Added to the variance before its square root.
    num_batches_tracked : int or None, default None
        The batches the running statistics have seen, this one counted (PyTorch's counter);
        used only when momentum is None.
    reduce : callable or None, default None
        A callable that sums per-channel sums over the batches of other processes
        (an all-reduce): ``reduce(sums, "forward")`` gets the (C + 1,) sums of x and the
        count, then the (C,) sums of squared deviations; ``reduce(sums, "backward")`` the
        (2C,) sums of dout and dout * x_hat, in the units of the global batch's loss. It
        returns the totals. Training then normalises with the statistics of the union of
        the batches, and the input gradient is that union's (sync batch norm).
    relu : bool, default False
        Also apply max(., 0) to each piece of the output right after it is scaled, while it
        is in cache (a ReLU fused in); ``batch_norm_backward`` then takes the ReLU's gradient.

    Returns
    -------
    out : ndarray, shape (N, C, \*spatial)
        x's shape and dtype.
    cache : tuple
        What ``batch_norm_backward`` needs.
    running : tuple of ndarray, each shape (C,)
        The new (running_mean, running_var), in the dtype of the ones given.
    """
    xp = get_array_module(x)
    x = check_float_array(x, "batch_norm")
    check_same_device("batch_norm", x, weight=weight, bias=bias, running_mean=running_mean)
    dtype = x.dtype
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    # The batch goes in pieces on numcnn's threads; the per-channel sums of the pieces are
    # added in a fixed order, so the result does not depend on the thread count. The output
    # is the one full-size array made: it holds x - mean until it is scaled, and backward
    # keeps x itself (or its dense copy, see _packed) rather than a normalised copy (a fresh
    # array costs a page fault per page).
    parts = pieces(len(x), x.size, on_host(xp))
    x = _packed(x, parts)
    out = xp.empty_like(x)
    count = x.size // x.shape[1]
    if training:
        total = _total(run_chunks(lambda part: x[part].sum(axis=axes), parts))
        if reduce is not None:
            both = reduce(xp.concatenate([total, xp.full(1, count, dtype)]), "forward")
            total, count = both[:-1], int(round(float(both[-1])))
        if count == 0:  # an empty batch (on every process): no statistics to take or move. As in
            # PyTorch, the output is empty and the gradients are those of eval mode: empty and zeros.
            return batch_norm_forward(x, weight, bias, running_mean, running_var, False, momentum, eps,
                                      relu=relu)
        if count < 2:
            raise ShapeError(f"batch_norm: training needs more than 1 value per channel, got input {x.shape}")
        mean = total / dtype.type(count)

        def centre(part):
            centred = xp.subtract(x[part], mean.reshape(shape), out=out[part])
            return _channel_dot(xp, centred, centred)

        squares = _total(run_chunks(centre, parts))
        var = (squares if reduce is None else reduce(squares, "forward")) / dtype.type(count)
        if momentum is not None:
            factor = momentum
        else:  # a cumulative average; on a GPU without a host sync (float64, then cast)
            factor = 1.0 / (float(num_batches_tracked) if on_host(xp) else num_batches_tracked.astype(xp.float64))

        def moved(old, stat, scale=1.0):
            return ((1 - factor) * old + factor * stat * scale).astype(old.dtype, copy=False)

        running = moved(running_mean, mean), moved(running_var, var, count / (count - 1))
    else:
        running = (running_mean, running_var)
        mean = running_mean.astype(dtype, copy=False)
        run_chunks(lambda part: xp.subtract(x[part], mean.reshape(shape), out=out[part]), parts)
        var = running_var.astype(dtype, copy=False)
    inv_std = (1 / xp.sqrt(var + dtype.type(eps))).astype(dtype, copy=False)
    w = weight.astype(dtype, copy=False)
    scale, shift = (w * inv_std).reshape(shape), bias.astype(dtype, copy=False).reshape(shape)

    def normalise(part):
        out[part] *= scale
        out[part] += shift
        if relu:
            activation.relu_(out[part])

    run_chunks(normalise, parts)
    relu_out = out if relu else None  # what the ReLU's gradient masks with
    return out, (x, mean, inv_std, w, training, axes, shape, count, reduce, relu_out), running


def _packed(x, parts):
    """x itself where its elements fill the memory they lie in (in any axis order), else a
    dense copy in x's axis order, made piece by piece on numcnn's threads.

    A convolution's output is a view whose rows carry a few extra columns: every pass over it
    iterates rows W elements long, and batch norm reads x three times (twice forward, once
    backward). One copy makes the other passes contiguous (the timings: docs/design.md).
    """
    if not on_host(get_array_module(x)):
        return x
    flat = span(x)
    if flat is not None and len(flat) == x.size:
        return x
    dense = np.empty_like(x)  # x's axis order, no gaps
    run_chunks(lambda part: copy_rows(dense[part], x[part]), parts)
    return dense


def _channel_dot(xp, a, b):
    """sum(a * b) over every axis but the channel axis 1, without an a * b temporary.

    a, b : (n, C, *spatial) -> (C,)
    """
    axes = "nc" + "hwdxyz"[:a.ndim - 2]
    return xp.einsum(f"{axes},{axes}->c", a, b)


def _total(partial_sums: list):
    """The sum of per-piece sums, added in their order."""
    total = partial_sums[0]
    for part in partial_sums[1:]:
        total = total + part
    return total


def batch_norm_backward(dout, cache):
    r"""Gradients of batch_norm_forward.

    In training mode the batch statistics depend on x, which adds the two mean terms.

    Parameters
    ----------
    dout : ndarray, shape (N, C, \*spatial)
        The gradient of the output (of the fused ReLU's, if forward had one).
    cache : tuple
        What ``batch_norm_forward`` returned beside its output.

    Returns
    -------
    dx : ndarray, shape (N, C, \*spatial)
        The input gradient.
    dweight, dbias : ndarray, shape (C,)
        The gradients of the scale and the shift.
    """
    xp = get_array_module(dout)
    x, mean, inv_std, w, training, axes, shape, count, reduce, relu_out = cache
    parts = pieces(len(x), x.size, on_host(xp))
    m = mean.reshape(shape)
    dx = xp.empty_like(dout)
    grad = dout if relu_out is None else xp.empty_like(dout)  # the gradient of the norm's output

    def sums(part):
        if relu_out is not None:  # the ReLU's gradient, piece by piece with the sums that read it
            xp.multiply(dout[part], relu_out[part] > 0, out=grad[part])
        centred = xp.subtract(x[part], m, out=dx[part])  # dx holds x - mean until input_grad
        return grad[part].sum(axis=axes), _channel_dot(xp, grad[part], centred)

    partial = run_chunks(sums, parts)
    # this batch's own sums: dbias = sum(dout), dweight = sum(dout * x_hat), x_hat = (x - mean) * inv_std
    dbias, dweight = _total([s for s, _ in partial]), _total([s for _, s in partial]) * inv_std
    scale = (w * inv_std).reshape(shape)
    if not training:
        run_chunks(lambda part: xp.multiply(grad[part], scale, out=dx[part]), parts)
        return dx, dweight, dbias
    total_b, total_w = dbias, dweight
    if reduce is not None:  # the batch statistics were the union's: so are these two means
        c = dbias.shape[0]
        both = reduce(xp.concatenate([dbias, dweight]), "backward")
        total_b, total_w = both[:c], both[c:]
    # x_hat * mean(dout * x_hat) = (x - mean) * slope
    slope, offset = (total_w * inv_std / count).reshape(shape), (total_b / count).reshape(shape)

    def input_grad(part):
        # dx = scale * (dout - mean(dout) - x_hat * mean(dout * x_hat)), in place over x - mean
        d = dx[part]
        d *= slope
        xp.subtract(grad[part], d, out=d)
        d -= offset
        d *= scale

    run_chunks(input_grad, parts)
    return dx, dweight, dbias
