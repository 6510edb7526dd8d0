"""How a convolution lays out its columns: the plans that ``conv`` and ``conv_depthwise`` follow.

A plan turns a padded input into columns and column gradients back. ``Plan`` takes strided
slices (any stride), ``WidePlan`` is the stride-1 fast path ("wide rows"), and ``ChannelPlan``
lays each channel's whole batch out as one flat vector for the depthwise kernels. The plain
textbook version of all this is ``functional.reference``: read it first.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..backend import get_array_module, on_host
from ..runtime import scratch
from .layout import copy_rows
from .window import Window, pad, padded_shape, unpad

# Per chunk, per thread: columns small enough to still be in cache when the GEMM reads them
# (the measurements behind each constant: docs/design.md).
COL_BUDGET_BYTES = 4 * 2**20
# On a GPU there is no cache to fit and every launch costs: one chunk for any usual batch.
DEVICE_COL_BUDGET_BYTES = 512 * 2**20


def budget(xp) -> int:
    """The bytes of columns one chunk may hold on xp's device."""
    return COL_BUDGET_BYTES if on_host(xp) else DEVICE_COL_BUDGET_BYTES


class TapGrid(NamedTuple):
    """Where each kernel tap reads in a flattened image: tap (i, j) at base + i*step_i + j*step_j."""
    base: int
    step_i: int
    step_j: int
    kh: int
    kw: int

    def offsets(self) -> list[int]:
        """The KH*KW flat offsets, row-major over (i, j)."""
        return [self.base + i * self.step_i + j * self.step_j for i in range(self.kh) for j in range(self.kw)]


class Plan:
    """How one convolution turns padded input into columns, and column gradients back.

    Columns are laid out (C*KH*KW, nb*L): rows ordered (channel, tap), so each group's rows
    are contiguous, and one row holds a tap's pixel for all nb samples and L output positions.
    That makes every GEMM a single large product over the whole chunk, which BLAS runs well
    faster than one small product per sample. This general plan takes strided slices (any
    stride); ``WidePlan`` is the stride-1 fast path.
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
        if on_host(xp):  # all taps in one copy, as WidePlan's columns
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


class WidePlan(Plan):
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
        self.taps = TapGrid(0, win.dh * wp, win.dw, win.kh, win.kw)
        self.offsets = self.taps.offsets()
        self.flat_size = (hp + self.extra_row) * wp
        self.left = left
        self.dx_length = self.height * wp
        # Gradient columns read dout shifted back by each tap's offset, hence the reversed
        # offsets; the source starts at q0 = top*Wp, so dout itself starts offsets[-1] - q0 in.
        self.grad_taps = TapGrid(self.offsets[-1], -win.dh * wp, -win.dw, win.kh, win.kw)
        self.grad_shift = self.offsets[-1] - top * wp

    @staticmethod
    def _flat_columns(flat, taps: "TapGrid", length, name: str):
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


class ChannelPlan(WidePlan):
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
        """Slices of the channels whose arrays_per_channel flat arrays fit the column budget."""
        per_chunk = max(1, budget(xp) // max(1, arrays_per_channel * self.total * itemsize))
        return [slice(s, min(s + per_chunk, channels)) for s in range(0, channels, per_chunk)]
