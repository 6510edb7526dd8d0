"""2-D convolution (cross-correlation, as in PyTorch), forward and backward side by side.

As in the textbook, convolution is one GEMM over unfolded patches; we multiply in the other
orientation,

::

    out (F, nb*L) = W_mat (F, C*KH*KW) @ col (C*KH*KW, nb*L)

for a chunk of nb samples with L output positions each. Groups add a leading group axis to
both operands. Where the time goes is copying, not arithmetic, so the layout departs from the
textbook's in four ways, each paying for itself in the benchmark:

* Stride 1 uses "wide rows": output rows are computed Wp (padded width) pixels long and the
  extra columns are dropped, so every kernel tap's patch is ONE contiguous slice of the
  flattened padded image; im2col becomes one copy from a strided view with an axis per kernel
  row and column (``conv_plans.WidePlan``).
* The output stays channel-major, (F, N, L), and is handed on as an NCHW *view*; no output
  transpose is ever made. Later layers read any strides.
* The batch goes in chunks whose column buffer stays under ``COL_BUDGET_BYTES``: small enough
  to still be in cache when the GEMM reads it, and memory stays bounded at any batch size.
  A batch within the budget is still cut for threads, but only into chunks worth their Python
  and GIL hand-offs (``MIN_CHUNK_BYTES``). On a GPU (CuPy arrays) there is no cache to fit and
  every launch costs: the budget is ``DEVICE_COL_BUDGET_BYTES``, one chunk for any usual batch.
  Backward rebuilds columns chunk by chunk rather than keeping them (KH*KW times the input).
  Every other pass over the batch happens per chunk too, on the chunk's thread while its data
  is in cache: the copy into the padded buffer (its border is filled once), the columns, the
  GEMM written straight into its block of the output, the bias, dout's widening and its sum
  for the bias gradient.
* The input gradient is, for stride 1, itself a correlation of the gradient with W^T, a GEMM
  with a long reduction instead of a thin GEMM plus col2im scatter-adds, over the input's own
  rows only (``_correlation_pays`` says where it pays). The weight gradient then comes from the
  same gradient columns against the input's rows, so backward builds one column buffer, not two.

A ReLU after the convolution can be fused in (``relu=True``; Sequential does it): each chunk
takes max(., 0) of its output block right after the GEMM, and backward masks each chunk's
gradient as it widens it, so the ReLU costs no pass over memory of its own either way.

1x1 convolutions skip im2col entirely; depthwise ones (one input channel per group) skip the
GEMM and work tap by tap on each channel's whole batch as one flat vector (``conv_depthwise``).

This is the fast path. The textbook's algorithm, plainly written, is ``functional.reference``:
read it first; it is tested against this module.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..backend import get_array_module, on_host
from ..errors import ConfigError, ShapeError
from ..runtime import PIECES, holds_blas, run_chunks, split
from . import activation
from . import conv_depthwise as depthwise
from .conv_plans import ChannelPlan, Plan, WidePlan, budget
from .layout import copy_rows
from .validate import check_float_array, check_same_device
from .window import Window, fill_border, interior, make_window

# The least a chunk's columns (or output) are given where the batch is cut for threads: a chunk
# costs tens of microseconds of Python, and its NumPy calls queue for the GIL with the others'.
MIN_CHUNK_BYTES = 1 << 21
# The correlation's GEMM runs over the input's rows (dx_length positions a sample) where col2im's
# runs over the output's (length): a "valid" convolution that shrinks its input much is left to col2im.
CORRELATION_MAX_STRETCH = 1.25


class ConvCache(NamedTuple):
    """What conv2d_forward keeps for conv2d_backward: the padded input and the weight matrix,
    not the columns (backward rebuilds them chunk by chunk)."""
    x_pad: Any            # (N, C, Hp, Wp), or x itself where there is no padding
    x_shape: tuple
    w_mat: Any            # (G, F/G, Cg*KH*KW)
    w_shape: tuple
    win: Window
    groups: int
    has_bias: bool
    plan: Any             # how the input becomes columns: a Plan, or None for a 1x1 conv
    relu_out: Any         # the fused ReLU's output, in the layout backward's gradient has; or None


@holds_blas
def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, relu=False):
    """Cross-correlate x with weight, as one batched GEMM over unfolded patches.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.
    weight : ndarray, shape (F, C // groups, KH, KW)
        The F kernels.
    bias : ndarray, shape (F,), optional
        Added to each output channel; None for none.
    stride : int or pair of int, default 1
        (SH, SW).
    padding : int, pair, 4-tuple, "valid" or "same", default 0
        Zero padding: (PH, PW) for a pair, (top, bottom, left, right) for a 4-tuple.
    dilation : int or pair of int, default 1
        (DH, DW), the spacing of the kernel's taps.
    groups : int, default 1
        C and F are split into this many groups, each convolved on its own.
    relu : bool, default False
        Also apply max(., 0), as ``relu`` does, to each block of the output while the
        GEMM has just written it: a ReLU fused in, a pass over the output saved each way.
        ``conv2d_backward`` then takes the gradient of the ReLU's output.

    Returns
    -------
    out : ndarray, shape (N, F, OH, OW)
        OH = (H + 2*PH - DH*(KH-1) - 1) // SH + 1, likewise OW; x's dtype.
    cache : tuple
        What ``conv2d_backward`` needs.
    """
    xp = get_array_module(x)
    x, weight, bias = _check_conv_args(x, weight, bias, groups)
    n, c = x.shape[:2]
    f, cg, kh, kw = weight.shape
    win = make_window(x.shape, (kh, kw), stride, padding, dilation, "conv2d")
    dtype = x.dtype
    w_mat = weight.astype(dtype, copy=False).reshape(groups, f // groups, cg * kh * kw)
    if n == 0:  # an empty batch gives an empty output, as in PyTorch; the paths below cut samples
        return xp.zeros((0, f, win.oh, win.ow), dtype), ConvCache(x, x.shape, w_mat, weight.shape, win,
                                                                  groups, bias is not None, None, None)

    plan_is_direct = True  # pointwise and depthwise paths add the bias to their NCHW output
    if _is_pointwise(win):
        plan = None
        x_pad = x
        out = _pointwise_forward(x, w_mat, groups).reshape(n, f, win.oh, win.ow)
    elif cg == 1 and groups > 1 and (win.sh, win.sw) == (1, 1):
        plan = ChannelPlan(x.shape, win)
        x_pad = plan.pad(x)
        out = depthwise.flat_forward(x_pad, w_mat, plan)
    elif cg == 1 and groups > 1:
        plan = Plan(x.shape, win)
        x_pad = plan.pad(x)
        out = plan.narrow(depthwise.forward(x_pad, w_mat, plan))
    else:
        plan_is_direct = False
        plan = WidePlan(x.shape, win) if (win.sh, win.sw) == (1, 1) else Plan(x.shape, win)
        # Each chunk copies its own samples into the padded buffer on its thread, just before
        # their columns read them; the border is filled here, once for the whole batch.
        x_pad = xp.empty(plan.padded_shape, dtype=dtype) if any(plan.pads) else x
        if x_pad is not x:
            fill_border(x_pad, plan.pads)
        # The GEMM yields channel-major (F, nb*L) blocks. They are assembled as (F, N, L) and
        # handed on as an NCHW *view* of that buffer: transposing to NCHW memory would copy the
        # whole output, and every later layer reads any strides anyway.
        out_cm = xp.empty((f, n, plan.length), dtype=dtype)
        b = bias.astype(dtype, copy=False)[:, None] if bias is not None else None

        def into_output(part):
            """This chunk's GEMM, straight into its block of the output, and its bias."""
            nb = part.stop - part.start
            if x_pad is not x:
                copy_rows(interior(x_pad[part], plan.pads), x[part])
            col = plan.columns(x_pad[part]).reshape(groups, cg * kh * kw, nb * plan.length)
            block = out_cm[:, part].reshape(f, nb * plan.length)  # a view: rows nb*L long
            xp.matmul(w_mat, col, out=block.reshape(groups, f // groups, nb * plan.length))
            if b is not None:
                block += b  # while the block is still in cache
            if relu:
                activation.relu_(block)
        row = plan.length * x.itemsize  # one sample's row of columns (c*kh*kw rows) or of output (f)
        run_chunks(into_output, _chunks(n, c * kh * kw * row, xp, f * row))
        out = plan.narrow(out_cm.transpose(1, 0, 2))
    if bias is not None and plan_is_direct:
        out += bias.astype(dtype, copy=False)[:, None, None]
    if relu and plan_is_direct:
        activation.relu_(out)
    # The fused ReLU's gradient masks with its output, kept in the layout backward's gradient has.
    relu_out = None if not relu else out if plan_is_direct else out_cm
    return out, ConvCache(x_pad, x.shape, w_mat, weight.shape, win, groups, bias is not None, plan, relu_out)


@holds_blas
def conv2d_backward(dout, cache, input_grad=True):
    """Gradients of conv2d_forward.

    Parameters
    ----------
    dout : ndarray, shape (N, F, OH, OW)
        The gradient of the output (of the fused ReLU's, if forward had one).
    cache : tuple
        What ``conv2d_forward`` returned beside its output.
    input_grad : bool, default True
        With False, dx is not computed (None): a model's first layer in training needs only
        its weights' gradients.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None
        The input gradient, None when input_grad is False.
    dweight : ndarray, shape (F, C // groups, KH, KW)
        The weight gradient.
    dbias : ndarray, shape (F,), or None
        The bias gradient, None when forward had no bias. All in the forward input's dtype.
    """
    xp = get_array_module(dout)
    x_pad, x_shape, w_mat, w_shape, win, groups, has_bias, plan, relu_out = cache
    n, c = x_shape[:2]
    f, cg, kh, kw = w_shape
    dtype = x_pad.dtype
    dout = check_float_array(dout, "conv2d_backward", 4, what="dout")
    if dout.shape != (n, f, win.oh, win.ow):
        raise ShapeError(f"conv2d_backward: expected dout of shape {(n, f, win.oh, win.ow)}, got {dout.shape}")
    dout = dout.astype(dtype, copy=False)
    if n == 0:  # an empty batch: an empty dx and all-zero weight and bias gradients, as in PyTorch
        return ((xp.zeros(x_shape, dtype) if input_grad else None), xp.zeros(w_shape, dtype),
                (xp.zeros(f, dtype) if has_bias else None))
    w_t = w_mat.transpose(0, 2, 1)  # (G, Cg*KH*KW, F/G)
    # The GEMM path below masks with the fused ReLU and sums db per chunk, with its other
    # passes; the direct paths here.
    direct = plan is None or (cg == 1 and groups > 1)
    if relu_out is not None and direct:
        dout = activation.relu_backward(dout, relu_out)
    db = dout.sum(axis=(0, 2, 3)) if has_bias and direct else None

    if plan is None:
        dx, dw = _pointwise_backward(dout, x_pad, w_mat, groups, input_grad)
        return dx, dw.reshape(w_shape), db
    if isinstance(plan, ChannelPlan):
        dx, dw = depthwise.flat_backward(dout, x_pad, w_mat, plan, input_grad)
        return dx, dw.reshape(w_shape), db
    if direct:
        dx_pad, dw = depthwise.backward(dout, x_pad, w_mat, plan, input_grad)
        return (plan.unpad(dx_pad) if input_grad else None), dw.reshape(w_shape), db

    # The correlation form of the input gradient reads F*KH*KW columns and the col2im form
    # writes C*KH*KW: take whichever buffer is smaller.
    correlation = isinstance(plan, WidePlan) and _correlation_pays(f, c, plan)
    wide = input_grad and correlation
    if wide:  # its GEMM yields (C, nb*H*Wp) blocks: dx is made channel-major, handed on as a view
        dx_cm = xp.empty((c, n, x_shape[2], plan.wp), dtype=dtype)
        # W'[g, c, (f, t)] = W[g*fg + f, c, t]
        w_prime = w_mat.reshape(groups, f // groups, cg, kh * kw).transpose(0, 2, 1, 3).reshape(
            groups, cg, f // groups * kh * kw)
    else:
        dx_pad = xp.empty(x_pad.shape, dtype=dtype) if input_grad else None

    def chunk_grads(part):
        """This chunk's shares of dW^T and db; its dx rows are written in place (chunks are
        disjoint). Every pass over the chunk runs here, on its thread, while it is in cache."""
        nb = part.stop - part.start
        d_wide = plan.widen_t(dout[part])  # (F, nb, L); wide rows' extra columns are zeros
        if relu_out is not None:  # the ReLU's gradient; the output is kept in this same layout
            xp.multiply(d_wide, relu_out[:, part] > 0, out=d_wide)
        db_share = d_wide.sum(axis=(1, 2)) if has_bias else None
        if correlation:
            # The gradient's columns serve both GEMMs: dW from them against the input's rows
            # (so the input's own KH*KW-times columns are never built), and dx = W' @ them.
            gcol = plan.grad_columns(plan.grad_source(d_wide)).reshape(groups, -1, nb * plan.dx_length)
            rows = plan.input_rows(x_pad[part]).reshape(groups, cg, nb * plan.dx_length)
            dw_share = xp.matmul(gcol, rows.transpose(0, 2, 1))  # (G, F/G*KH*KW, Cg)
            if wide:
                xp.matmul(w_prime, gcol, out=dx_cm[:, part].reshape(groups, cg, nb * plan.dx_length))
            return dw_share, db_share
        d_part = d_wide.reshape(groups, f // groups, nb * plan.length)
        col = plan.columns(x_pad[part]).reshape(groups, cg * kh * kw, nb * plan.length)
        # dW^T = col @ d^T: OpenBLAS runs this long-K product faster with the taller
        # (C*KH*KW) operand on the left, so the weight gradient is accumulated transposed.
        dw_share = xp.matmul(col, d_part.transpose(0, 2, 1))
        del col
        if input_grad:
            plan.fold(xp.matmul(w_t, d_part), dx_pad[part])
        return dw_share, db_share

    # The chunks do not depend on input_grad: dW sums the same shares in the same order either way.
    # Per sample, the columns a chunk builds: the gradient's and the input's rows, or the input's;
    # and its share of the (widened) gradient.
    per_sample = (f * kh * kw + c) * plan.dx_length if correlation else c * kh * kw * plan.length
    shares = run_chunks(chunk_grads, _chunks(n, per_sample * x_pad.itemsize, xp, f * plan.length * x_pad.itemsize))
    dw_t, db = shares[0]
    for dw_share, db_share in shares[1:]:  # in chunk order, whatever the thread count
        dw_t += dw_share
        if has_bias:
            db += db_share
    if correlation:  # (G, F/G*KH*KW, Cg) -> (G, F/G, Cg*KH*KW)
        dw = dw_t.reshape(groups, f // groups, kh * kw, cg).transpose(0, 1, 3, 2)
    else:  # (G, Cg*KH*KW, F/G) -> (G, F/G, Cg*KH*KW)
        dw = dw_t.transpose(0, 2, 1)
    if not input_grad:
        return None, dw.reshape(w_shape), db
    return (plan.dx_view(dx_cm) if wide else plan.unpad(dx_pad)), dw.reshape(w_shape), db


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Forward convolution only: ``conv2d_forward``'s output without the cache.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.
    weight : ndarray, shape (F, C // groups, KH, KW)
        The F kernels.
    bias, stride, padding, dilation, groups
        As ``conv2d_forward`` takes them.

    Returns
    -------
    ndarray, shape (N, F, OH, OW)
        As ``conv2d_forward``'s out.
    """
    return conv2d_forward(x, weight, bias, stride, padding, dilation, groups)[0]


# -- the pieces behind the entry points --------------------------------------------------------


def _chunks(n: int, bytes_per_sample: int, xp=np, out_bytes_per_sample: int = 0):
    """Batch slices whose column buffers (bytes_per_sample a sample) each stay under the
    budget (``budget(xp)``), and on the CPU up to PIECES of them, so that many threads all
    have work: as many as give each chunk MIN_CHUNK_BYTES of columns or of output (the larger),
    rounded down to a power of two (an even share on 2, 4 or 8 threads).

    The cut depends on the shapes alone, never on the thread count: the same chunks are
    summed in the same order with one thread or sixteen, so results are bit-identical.
    """
    per_sample = max(1, bytes_per_sample)
    count = -(-n // max(1, budget(xp) // per_sample))
    if on_host(xp):
        work = max(per_sample, out_bytes_per_sample)
        wanted = max(1, min(PIECES, n * work // MIN_CHUNK_BYTES))
        count = max(count, 1 << (wanted.bit_length() - 1))
    return split(n, count)


def _is_pointwise(win: Window) -> bool:
    """1x1 kernel, stride 1, no padding: the input already is the column matrix."""
    return win.kh == win.kw == 1 and win.sh == win.sw == 1 and not any(win.pads)


def _pointwise_forward(x, w_mat, groups):
    """x (N, C, H, W), w_mat (G, F/G, C/G) -> (N, G, F/G, H*W): one GEMM per sample and group,
    the batch cut into chunks for the threads."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    x3 = x.reshape(n, groups, c // groups, -1)
    out = xp.empty((n, groups, w_mat.shape[1], x3.shape[-1]), dtype=x.dtype)

    def chunk(part):
        xp.matmul(w_mat, x3[part], out=out[part])
    run_chunks(chunk, _chunks(n, x3[0].nbytes, xp, out[0].nbytes))
    return out


def _pointwise_backward(dout, x, w_mat, groups, input_grad):
    """Gradients of ``_pointwise_forward``: dx (N, C, H, W) or None, dw (G, F/G, C/G); the
    chunks' weight-gradient shares are summed in chunk order, whatever the thread count."""
    xp = get_array_module(dout)
    n, f = dout.shape[:2]
    d3 = dout.reshape(n, groups, f // groups, -1)
    x3 = x.reshape(n, groups, x.shape[1] // groups, -1)
    dx = xp.empty(x3.shape, dtype=x.dtype) if input_grad else None
    w_t = w_mat.transpose(0, 2, 1)

    def chunk(part):
        if input_grad:
            xp.matmul(w_t, d3[part], out=dx[part])
        return xp.matmul(d3[part], x3[part].transpose(0, 1, 3, 2)).sum(axis=0)
    shares = run_chunks(chunk, _chunks(n, x3[0].nbytes, xp, d3[0].nbytes))
    dw = shares[0]
    for share in shares[1:]:
        dw += share
    return (dx.reshape(x.shape) if input_grad else None), dw


def _check_conv_args(x, weight, bias, groups):
    x = check_float_array(x, "conv2d", 4)
    weight = check_float_array(weight, "conv2d", 4, what="weight")
    check_same_device("conv2d", x, weight=weight, bias=bias)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ConfigError(f"conv2d: groups must be a positive int, got {groups!r}")
    f, cg = weight.shape[:2]
    if x.shape[1] != cg * groups:
        raise ShapeError(f"conv2d: expected input with {cg * groups} channels (weight {weight.shape}, "
                         f"groups={groups}), got input of shape {x.shape}")
    if f % groups:
        raise ShapeError(f"conv2d: out channels {f} are not divisible by groups={groups}")
    if bias is not None:
        bias = check_float_array(bias, "conv2d", 1, what="bias")
        if bias.shape != (f,):
            raise ShapeError(f"conv2d: expected bias of shape ({f},), got {bias.shape}")
    return x, weight, bias


def _correlation_pays(f: int, c: int, plan: "WidePlan") -> bool:
    """Gradients from the correlation's columns (F*KH*KW rows) rather than from the input's
    columns and a col2im (C*KH*KW rows each)?

    The correlation wins where its column buffer is the smaller one (F <= C) and its GEMMs are
    not much longer than col2im's; it needs no scatter-adds, and the weight gradient comes from
    the same columns (the timings that chose this rule: docs/design.md).
    """
    return f <= c and plan.dx_length <= CORRELATION_MAX_STRETCH * plan.length
