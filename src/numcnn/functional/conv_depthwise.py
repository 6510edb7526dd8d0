"""Depthwise convolution (one input channel per group): no GEMM, tap by tap on each channel.

``flat_forward``/``flat_backward`` take stride 1 with each channel's whole batch as one flat
vector (``ChannelPlan``); ``forward``/``backward`` take any stride through ``Plan``'s tap views.
"""

from __future__ import annotations

from ..backend import get_array_module
from .conv_plans import ChannelPlan, Plan

def flat_forward(x_flat, w_mat, plan: ChannelPlan):
    """x_flat (C, N*S + slack) from ChannelPlan.pad, w_mat (C, M, KH*KW) -> (N, C*M, OH, OW)."""
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


def flat_backward(dout, x_flat, w_mat, plan: ChannelPlan, input_grad=True):
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


def forward(x_pad, w_mat, plan: Plan):
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


def backward(dout, x_pad, w_mat, plan: Plan, input_grad=True):
    """Gradients of forward: dx_pad (N, G, Hp, Wp) (None without input_grad) and
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
