"""2-D convolution (cross-correlation, as in PyTorch), forward and backward side by side.

As in the textbook, convolution is one GEMM over unfolded patches; we multiply in the other
orientation,

    out (F, nb*L) = W_mat (F, C*KH*KW) @ col (C*KH*KW, nb*L)

for a chunk of nb samples with L output positions each. Groups add a leading group axis to
both operands. Where the time goes is copying, not arithmetic, so the layout departs from the
textbook's in four ways, each paying for itself in the benchmark:

* Stride 1 uses "wide rows": output rows are computed Wp (padded width) pixels long and the
  extra columns are dropped, so every kernel tap's patch is ONE contiguous slice of the
  flattened padded image; im2col becomes one copy from a strided view with an axis per kernel
  row and column (``_WidePlan``).
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
GEMM and work tap by tap on each channel's whole batch as one flat vector.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..backend import get_array_module, on_host
from ..errors import ConfigError, ShapeError
from ..runtime import PIECES, holds_blas, run_chunks, scratch, split
from . import activation
from .layout import copy_rows
from .validate import check_float_array, check_same_device
from .window import Window, fill_border, interior, make_window, pad, padded_shape, unpad

# Per chunk, per thread. The ResBlock's step (32 channels, 32x32, batch 128) took 10-15% less
# time at 3-6 MiB than at 8 (three samples a chunk instead of six) on 2 cores sharing 32 MiB of
# L3 with other tenants; the other benchmark steps and layers were within noise either way.
COL_BUDGET_BYTES = 4 * 2**20
DEVICE_COL_BUDGET_BYTES = 512 * 2**20
# The least a chunk's columns are given where the batch is cut for threads: a chunk costs tens
# of microseconds of Python, and its NumPy calls queue for the GIL with the other threads'.
# The first conv of DeepConvNet (1 -> 16 channels, 28x28, batch 100: 2.9 MB of columns) took
# 1.7 ms forward and 2.9 backward in 8 chunks on 2 threads, 1.0 and 1.7 in 2. Its training
# step, alternating processes: 71-74 ms at 8 chunks a conv, 69-70 at 1 MiB, 67-68 at 2 MiB,
# 69-78 at 4 MiB.
MIN_CHUNK_BYTES = 1 << 21


def _budget(xp) -> int:
    return COL_BUDGET_BYTES if on_host(xp) else DEVICE_COL_BUDGET_BYTES


class _TapGrid(NamedTuple):
    """Where each kernel tap reads in a flattened image: tap (i, j) at base + i*step_i + j*step_j."""
    base: int
    step_i: int
    step_j: int
    kh: int
    kw: int

    def offsets(self) -> list[int]:
        """The KH*KW flat offsets, row-major over (i, j)."""
        return [self.base + i * self.step_i + j * self.step_j for i in range(self.kh) for j in range(self.kw)]


class _Plan:
    """How one convolution turns padded input into columns, and column gradients back.

    Columns are laid out (C*KH*KW, nb*L): rows ordered (channel, tap), so each group's rows
    are contiguous, and one row holds a tap's pixel for all nb samples and L output positions.
    That makes every GEMM a single large product over the whole chunk, which BLAS runs well
    faster than one small product per sample. This general plan takes strided slices (any
    stride); ``_WidePlan`` is the stride-1 fast path.
    """

    def __init__(self, x_shape, win: Window):
        self.win = win
        self.pads = win.pads  # what pad() adds: (top, bottom, left, right)
        self.padded_shape = padded_shape(x_shape, win.pads)
        self.length = win.oh * win.ow

    def pad(self, x):
        """x (N, C, H, W) -> (N, C, Hp, Wp); x itself if no padding."""
        return pad(x, self.pads)

    def columns(self, x_pad):
        """x_pad (nb, C, Hp, Wp) -> (C*KH*KW, nb*L)."""
        xp = get_array_module(x_pad)
        nb, c = x_pad.shape[:2]
        w = self.win
        col = scratch("conv.columns", (c, w.kh, w.kw, nb, w.oh, w.ow), x_pad.dtype, xp)
        if on_host(xp):  # all taps in one copy, as _WidePlan's columns
            sb, sc, sh, sw = x_pad.strides
            col[...] = as_strided(x_pad, shape=col.shape, writeable=False,
                                  strides=(sc, w.dh * sh, w.dw * sw, sb, w.sh * sh, w.sw * sw))
        else:
            for i, j, rows, cols in w.offsets():
                col[:, i, j] = x_pad[:, :, rows, cols].transpose(1, 0, 2, 3)
        return col.reshape(c * w.kh * w.kw, nb * self.length)

    def fold(self, dcol, out):
        """Scatter-add columns (C*KH*KW, nb*L) into ``out`` (nb, C, Hp, Wp), zeroing it first."""
        nb, c = out.shape[:2]
        w = self.win
        dcol = dcol.reshape(c, w.kh, w.kw, nb, w.oh, w.ow)
        out.fill(0)
        for i, j, rows, cols in w.offsets():
            out[:, :, rows, cols] += dcol[:, i, j].transpose(1, 0, 2, 3)

    def tap_views(self, x_pad):
        """One view per kernel tap of the padded input (or of its gradient buffer): (N, C, OH, OW)."""
        return [x_pad[:, :, rows, cols] for _, _, rows, cols in self.win.offsets()]

    def widen(self, dout):
        """(N, F, OH, OW) gradient -> the layout of ``tap_views`` outputs."""
        return dout

    def narrow(self, out):
        """(N, F, L) GEMM output -> (N, F, OH, OW)."""
        return out.reshape(out.shape[0], out.shape[1], self.win.oh, self.win.ow)

    def widen_t(self, dout):
        """(N, F, OH, OW) gradient -> (F, N, L), the layout the weight-gradient GEMM reads; a
        scratch buffer."""
        n, f = dout.shape[:2]
        out = scratch("conv.widened", (f, n, self.win.oh, self.win.ow), dout.dtype, get_array_module(dout))
        out[...] = dout.transpose(1, 0, 2, 3)
        return out.reshape(f, n, self.length)

    def unpad(self, dx_pad):
        return unpad(dx_pad, self.win.pads)


class _WidePlan(_Plan):
    """Stride 1: each tap's patch is one contiguous slice of the flattened padded image.

    Output position (oh, x) for x in [0, Wp) sits at flat index oh*Wp + x; tap (i, j) reads
    flat index oh*Wp + x + i*DH*Wp + j*DW. Columns x >= OW wrap into the next row: they are
    computed, then dropped (narrow) and given zero gradient (widen). An extra zero row at
    the bottom keeps the last tap's slice inside the buffer.

    Neighbouring rows share their padding: a tap reading past a row's right edge lands in the
    next row's left padding, which is zero too. So a row needs only max(left, right) padding
    columns, not left + right (Wp = W + 1 for a 3x3 "same" kernel, not W + 2), and every
    GEMM and copy is that much shorter: 10% on an 8x8 image.

    The input gradient is then itself a stride-1 correlation: dx_flat[q] = sum over taps of
    W_tap^T @ dwide[q - offset_tap]. Computing it as a GEMM over columns of the gradient keeps
    the reduction (F*KH*KW) long, where a col2im would need a thin GEMM and a scatter-add. It
    runs over the input's own rows only, H rows Wp wide (``dx_length`` positions per sample),
    from q0 = top*Wp on; the padding rows above and below are never computed.
    """

    def __init__(self, x_shape, win: Window):
        super().__init__(x_shape, win)
        n, c, hp, _ = self.padded_shape
        top, bottom, left, right = win.pads
        self.height, self.width = x_shape[2:]
        # Right padding beyond the next row's left padding, and room for the wide output row.
        right = max(0, right - left, win.ow - self.width - left)
        self.wp = wp = self.width + left + right
        # Rows the last tap's slice runs past the bottom padding: (KW-1)*DW positions.
        self.extra_row = -(-(win.kw - 1) * win.dw // wp)
        self.pads = (top, bottom + self.extra_row, left, right)
        self.padded_shape = (n, c, hp + self.extra_row, wp)
        self.length = win.oh * wp
        # Tap (i, j) reads from flat index base + i*step_i + j*step_j on: forward's columns from
        # the input at i*DH*Wp + j*DW, the input gradient's from the output gradient, reversed.
        self.taps = _TapGrid(0, win.dh * wp, win.dw, win.kh, win.kw)
        self.offsets = self.taps.offsets()
        self.flat_size = (hp + self.extra_row) * wp
        self.left = left
        self.dx_length = self.height * wp
        # Gradient columns read dout shifted back by each tap's offset, hence the reversed
        # offsets; the source starts at q0 = top*Wp, so dout itself starts offsets[-1] - q0 in.
        self.grad_taps = _TapGrid(self.offsets[-1], -win.dh * wp, -win.dw, win.kh, win.kw)
        self.grad_shift = self.offsets[-1] - top * wp

    @staticmethod
    def _flat_columns(flat, taps: "_TapGrid", length, name: str):
        """flat (nb, C, S) -> (C*KH*KW, nb*length): row (c, t) = flat[:, c, o_t:o_t+length],
        o_t the flat offset of tap t (``taps``). The result is the thread's scratch buffer
        ``name``, good until its next call."""
        xp = get_array_module(flat)
        nb, c = flat.shape[:2]
        col = scratch(name, (c, taps.kh, taps.kw, nb, length), flat.dtype, xp)
        if on_host(xp):
            # All taps in ONE copy, from a view with an axis per kernel row and column: each
            # NumPy call costs the GIL twice, and the pool's threads queue for it.
            sb, sc, sl = flat.strides
            view = as_strided(flat[:, :, taps.base:], shape=col.shape,
                              strides=(sc, taps.step_i * sl, taps.step_j * sl, sb, sl), writeable=False)
            col[...] = view
        else:
            for t, offset in enumerate(taps.offsets()):
                col[:, t // taps.kw, t % taps.kw] = flat[:, :, offset:offset + length].transpose(1, 0, 2)
        return col.reshape(c * taps.kh * taps.kw, nb * length)

    def columns(self, x_pad):
        nb, c = x_pad.shape[:2]
        return self._flat_columns(x_pad.reshape(nb, c, -1), self.taps, self.length, "conv.columns")

    def fold(self, dcol, out):
        nb, c = out.shape[:2]
        taps = len(self.offsets)
        flat = out.reshape(nb, c, -1)
        flat.fill(0)
        dcol = dcol.reshape(c, taps, nb, self.length)
        for t, offset in enumerate(self.offsets):
            flat[:, :, offset:offset + self.length] += dcol[:, t].transpose(1, 0, 2)

    def tap_views(self, x_pad):
        """One contiguous-row view per tap: (N, C, L)."""
        flat = x_pad.reshape(x_pad.shape[0], x_pad.shape[1], -1)
        return [flat[:, :, o:o + self.length] for o in self.offsets]

    def narrow(self, out):
        return out.reshape(out.shape[0], out.shape[1], self.win.oh, self.wp)[..., :self.win.ow]

    def widen(self, dout):
        """(N, F, OH, OW) -> (N, F, OH*Wp), zeros in the wide columns; a scratch buffer."""
        xp = get_array_module(dout)
        n, f = dout.shape[:2]
        wide = scratch("conv.widened", (n, f, self.win.oh, self.wp), dout.dtype, xp)
        wide[..., self.win.ow:] = 0
        copy_rows(wide[..., :self.win.ow], dout)
        return wide.reshape(n, f, self.length)

    def widen_t(self, dout):
        return self.widen(dout.transpose(1, 0, 2, 3))

    def grad_source(self, d_wide):
        """d_wide (F, nb, L), from ``widen_t`` -> (nb, F, S') with S' = offsets[-1] + dx_length:
        src[p] = d_wide[p - grad_shift], zero where that is outside d_wide (a view of an
        (F, nb, S') buffer). Wide positions that only reach padding rows are left out."""
        xp = get_array_module(d_wide)
        f, nb, length = d_wide.shape
        size = self.offsets[-1] + self.dx_length
        start, skip = max(self.grad_shift, 0), max(-self.grad_shift, 0)
        stop = start + max(0, min(length - skip, size - start))
        src = scratch("conv.grad_source", (f, nb, size), d_wide.dtype, xp)
        src[:, :, :start] = 0
        src[:, :, start:stop] = d_wide[:, :, skip:skip + stop - start]
        src[:, :, stop:] = 0
        return src.transpose(1, 0, 2)

    def grad_columns(self, src):
        """Columns of the gradient source, (F*KH*KW, nb*dx_length), for the input-gradient GEMM."""
        return self._flat_columns(src, self.grad_taps, self.dx_length, "conv.grad_columns")

    def input_rows(self, x_pad):
        """x_pad (nb, C, Hp, Wp) -> (C, nb*dx_length): the input's own rows, padding columns
        included (zeros), in the positions ``grad_columns`` has. Row (f, t) of those columns
        holds dout[q + top*Wp - offset_t] at input position q, so their product with these rows
        is the weight gradient too: dW[f, c, t] = sum_q dout[q + top*Wp - offset_t] x[c, q]."""
        nb, c = x_pad.shape[:2]
        q0 = self.pads[0] * self.wp
        rows = x_pad.reshape(nb, c, -1)[:, :, q0:q0 + self.dx_length]
        return rows.transpose(1, 0, 2).reshape(c, nb * self.dx_length)  # one copy, not KH*KW

    def dx_view(self, dx_cm):
        """(C, N, H, Wp) channel-major correlation output -> dx (N, C, H, W), a view."""
        return dx_cm[..., self.left:self.left + self.width].transpose(1, 0, 2, 3)

    def unpad(self, dx_pad):
        top, _, left, _ = self.pads
        return dx_pad[..., top:top + self.height, left:left + self.width]


# The correlation's GEMM runs over the input's rows (dx_length positions a sample) where col2im's
# runs over the output's (length): a "valid" convolution that shrinks its input much is left to col2im.
CORRELATION_MAX_STRETCH = 1.25


def _correlation_pays(f: int, c: int, plan: "_WidePlan") -> bool:
    """Gradients from the correlation's columns (F*KH*KW rows) rather than from the input's
    columns and a col2im (C*KH*KW rows each)?

    The correlation wins where its column buffer is the smaller one (F <= C) and its GEMMs are
    not much longer than col2im's; it needs no scatter-adds, and the weight gradient comes from
    the same columns. Backward, batch 100, 3x3, 2 threads, best of 25, correlation against
    col2im: 64 -> 64 channels on 8x8 8.0-9.8 ms against 9.5-11.9; 16 -> 16 on 28x28 9.0-10.0
    against 12.3-14.9; 16 -> 32 on 14x14 (F = 2C) 4.9-8.3 against 5.4-6.6, a wash; 8 -> 32
    (F = 4C) 4.0-4.5 against 3.0-3.6.
    """
    return f <= c and plan.dx_length <= CORRELATION_MAX_STRETCH * plan.length


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
    plan: Any             # how the input becomes columns: a _Plan, or None for a 1x1 conv
    relu_out: Any         # the fused ReLU's output, in the layout backward's gradient has; or None


def _chunks(n: int, bytes_per_sample: int, xp=np, out_bytes_per_sample: int = 0):
    """Batch slices whose column buffers (bytes_per_sample a sample) each stay under the
    budget (``_budget(xp)``), and on the CPU up to PIECES of them, so that many threads all
    have work: as many as give each chunk MIN_CHUNK_BYTES of columns or of output (the larger),
    rounded down to a power of two (an even share on 2, 4 or 8 threads).

    The cut depends on the shapes alone, never on the thread count: the same chunks are
    summed in the same order with one thread or sixteen, so results are bit-identical.
    """
    per_sample = max(1, bytes_per_sample)
    count = -(-n // max(1, _budget(xp) // per_sample))
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


@holds_blas
def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, relu=False):
    """Cross-correlate x with weight, as one batched GEMM over unfolded patches.

    x      : (N, C, H, W)
    weight : (F, C // groups, KH, KW)
    bias   : (F,) or None
    padding: int, (PH, PW), "valid" or "same"
    relu   : also apply max(., 0), as ``relu`` does, to each block of the output while the
             GEMM has just written it: a ReLU fused in, a pass over the output saved each way.
             ``conv2d_backward`` then takes the gradient of the ReLU's output.
    returns: out (N, F, OH, OW) with OH = (H + 2*PH - DH*(KH-1) - 1) // SH + 1, and the cache
             for ``conv2d_backward``. out has x's dtype.
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
        plan = _ChannelPlan(x.shape, win)
        x_pad = plan.pad(x)
        out = _depthwise_flat_forward(x_pad, w_mat, plan)
    elif cg == 1 and groups > 1:
        plan = _Plan(x.shape, win)
        x_pad = plan.pad(x)
        out = plan.narrow(_depthwise_forward(x_pad, w_mat, plan))
    else:
        plan_is_direct = False
        plan = _WidePlan(x.shape, win) if (win.sh, win.sw) == (1, 1) else _Plan(x.shape, win)
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

    dout   : (N, F, OH, OW), the gradient of the output (of the fused ReLU's, if forward had one)
    returns: dx (N, C, H, W), dweight (F, C // groups, KH, KW), dbias (F,) or None, all in
             the forward input's dtype. With input_grad=False, dx is not computed (None):
             a model's first layer in training needs only its weights' gradients.
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
    if isinstance(plan, _ChannelPlan):
        dx, dw = _depthwise_flat_backward(dout, x_pad, w_mat, plan, input_grad)
        return dx, dw.reshape(w_shape), db
    if direct:
        dx_pad, dw = _depthwise_backward(dout, x_pad, w_mat, plan, input_grad)
        return (plan.unpad(dx_pad) if input_grad else None), dw.reshape(w_shape), db

    # The correlation form of the input gradient reads F*KH*KW columns and the col2im form
    # writes C*KH*KW: take whichever buffer is smaller.
    correlation = isinstance(plan, _WidePlan) and _correlation_pays(f, c, plan)
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


class _ChannelPlan(_WidePlan):
    """Stride-1 depthwise layout: each channel's whole batch as ONE flat vector.

    The padded images of all samples are laid end to end per channel, (C, N*S), so every
    tap is one contiguous slice covering the whole batch, and the per-channel work is a few
    long vector operations done in channel chunks that stay in cache.
    """

    def __init__(self, x_shape, win: Window):
        super().__init__(x_shape, win)
        self.n = x_shape[0]
        self.total = self.n * self.flat_size  # output positions computed per channel

    def pad(self, x):
        """(N, C, H, W) -> (C, N*S + offsets[-1]): channel-major, padded, with slack for the last tap."""
        xp = get_array_module(x)
        n, c, h, w = x.shape
        top, _, left, _ = self.win.pads
        flat = xp.zeros((c, self.total + self.offsets[-1]), dtype=x.dtype)
        grid = flat[:, :self.total].reshape(c, n, -1, self.wp)
        grid[:, :, top:top + h, left:left + w] = x.transpose(1, 0, 2, 3)
        return flat

    def to_nchw(self, flat, h, w, rows, cols):
        """(C, N*S ...) -> (N, C, h, w), reading rows/cols offsets within each padded image.

        A strided view, not a copy: like the GEMM path's channel-major output, it is handed on
        as is, and later layers read any strides.
        """
        grid = flat[:, :self.total].reshape(flat.shape[0], self.n, -1, self.wp)
        return grid[:, :, rows:rows + h, cols:cols + w].transpose(1, 0, 2, 3)

    def chunks(self, channels, arrays_per_channel, itemsize, xp=np):
        budget = max(1, _budget(xp) // max(1, arrays_per_channel * self.total * itemsize))
        return [slice(s, min(s + budget, channels)) for s in range(0, channels, budget)]


def _depthwise_flat_forward(x_flat, w_mat, plan: _ChannelPlan):
    """x_flat (C, N*S + slack) from _ChannelPlan.pad, w_mat (C, M, KH*KW) -> (N, C*M, OH, OW)."""
    xp = get_array_module(x_flat)
    c, m, _ = w_mat.shape
    chunks = plan.chunks(c, 3 * m, x_flat.itemsize, xp)
    out = xp.empty((c, m, plan.total), dtype=x_flat.dtype)
    tmp = xp.empty((chunks[0].stop, m, plan.total), dtype=x_flat.dtype)
    for part in chunks:
        o, t_buf = out[part], tmp[:part.stop - part.start]
        for t, offset in enumerate(plan.offsets):
            # the first tap initialises the chunk, the others accumulate into it
            xp.multiply(x_flat[part, None, offset:offset + plan.total], w_mat[part, :, t, None],
                        out=o if t == 0 else t_buf)
            if t:
                o += t_buf
    return plan.to_nchw(out.reshape(c * m, -1), plan.win.oh, plan.win.ow, 0, 0)


def _depthwise_flat_backward(dout, x_flat, w_mat, plan: _ChannelPlan, input_grad=True):
    """Gradients of _depthwise_flat_forward: dx (N, C, H, W) (None without input_grad) and
    dw (C, M, KH*KW)."""
    xp = get_array_module(dout)
    c, m, taps = w_mat.shape
    n, f, oh, ow = dout.shape
    d = xp.zeros((f, plan.total), dtype=dout.dtype)
    d.reshape(f, n, -1, plan.wp)[:, :, :oh, :ow] = dout.transpose(1, 0, 2, 3)
    d = d.reshape(c, m, plan.total)
    dx_flat = xp.zeros(x_flat.shape, dtype=x_flat.dtype) if input_grad else None
    dw = xp.empty(w_mat.shape, dtype=x_flat.dtype)
    for part in plan.chunks(c, 3 * m, x_flat.itemsize, xp):
        d_part = d[part]
        for t, offset in enumerate(plan.offsets):
            x_tap = x_flat[part, offset:offset + plan.total]
            # dw[c, m, t] = <d[c, m], x_tap[c]>: one long dot product per channel, a stacked
            # matrix-vector product (contiguous rows, so BLAS takes it).
            dw[part, :, t] = xp.matmul(d_part, x_tap[:, :, None])[:, :, 0]
            if not input_grad:
                continue
            # dx[c, tap] += sum_m w[c, m, t] * d[c, m]
            dx_part = dx_flat[part, offset:offset + plan.total]
            if m == 1:
                dx_part += d_part[:, 0] * w_mat[part, 0, t, None]
            else:
                dx_part += xp.einsum("cm,cmt->ct", w_mat[part, :, t], d_part)
    if not input_grad:
        return None, dw
    top, _, left, _ = plan.win.pads
    h, w = plan.height, plan.width
    return plan.to_nchw(dx_flat, h, w, top, left), dw


def _depthwise_forward(x_pad, w_mat, plan: _Plan):
    """One input channel per group: out[n, g*M + m] = sum over taps of w[g, m, tap] * x[n, g, tap].

    A GEMM per (sample, channel) would be a 1 x KH*KW product, so instead accumulate over
    the KH*KW taps with broadcasting; each pass is a plain multiply-add over the output.
    x_pad (N, G, Hp, Wp), w_mat (G, M, KH*KW) -> (N, G*M, L), L positions in the plan's layout
    """
    xp = get_array_module(x_pad)
    n, g = x_pad.shape[:2]
    m = w_mat.shape[1]
    taps = plan.tap_views(x_pad)
    spatial = taps[0].shape[2:]
    out = xp.zeros((n, g, m) + spatial, dtype=x_pad.dtype)
    tmp = xp.empty_like(out)
    for t, view in enumerate(taps):
        xp.multiply(view[:, :, None], w_mat[:, :, t].reshape((g, m) + (1,) * len(spatial)), out=tmp)
        out += tmp
    return out.reshape(n, g * m, -1)


def _depthwise_backward(dout, x_pad, w_mat, plan: _Plan, input_grad=True):
    """Gradients of _depthwise_forward: dx_pad (N, G, Hp, Wp) (None without input_grad) and
    dw (G, M, KH*KW)."""
    xp = get_array_module(dout)
    n, g = x_pad.shape[:2]
    m = w_mat.shape[1]
    x_taps = plan.tap_views(x_pad)
    spatial = x_taps[0].shape[2:]
    d = plan.widen(dout).reshape((n, g, m) + spatial)
    sum_axes = (0,) + tuple(range(3, 3 + len(spatial)))
    dx_pad = xp.zeros(x_pad.shape, dtype=x_pad.dtype) if input_grad else None
    dx_taps = plan.tap_views(dx_pad) if input_grad else [None] * len(x_taps)  # views into dx_pad
    dw = xp.empty(w_mat.shape, dtype=x_pad.dtype)
    tmp = xp.empty_like(d)
    for t, (x_view, dx_view) in enumerate(zip(x_taps, dx_taps)):
        xp.multiply(d, x_view[:, :, None], out=tmp)
        dw[:, :, t] = tmp.sum(axis=sum_axes)
        if not input_grad:
            continue
        xp.multiply(d, w_mat[:, :, t].reshape((g, m) + (1,) * len(spatial)), out=tmp)
        dx_view += tmp.sum(axis=2) if m > 1 else tmp[:, :, 0]
    return dx_pad, dw


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Forward convolution only; see ``conv2d_forward`` for shapes."""
    return conv2d_forward(x, weight, bias, stride, padding, dilation, groups)[0]
