"""Naive nested-loop definitions of the windowed kernels: the yardstick for the fast ones.

Each function is written to be read, not to run fast: one Python loop per index of the
definition, no vectorisation, everything accumulated in float64 and returned as float64.
The tests use them on tiny shapes only, and check them against PyTorch in test_reference.py.

Shapes, as in numcnn:
    x      : (N, C, H, W)
    weight : (F, C // groups, KH, KW)
    out    : (N, F, OH, OW),  OH = (H + PT + PB - DH*(KH-1) - 1) // SH + 1
where PT/PB are the zero rows added on top/bottom (PL/PR columns left/right), SH the
stride and DH the dilation along the height; likewise along the width.
"""

from __future__ import annotations

import numpy as np


def pair(value) -> tuple[int, int]:
    """An int or an (h, w) pair as an (h, w) pair."""
    if isinstance(value, (tuple, list)):
        h, w = value
        return int(h), int(w)
    return int(value), int(value)


def out_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    """Number of window positions along one axis (pad_total = padding before + after)."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def conv_padding(padding, kernel_size, dilation=1) -> tuple[int, int, int, int]:
    """conv2d's ``padding`` argument as (top, bottom, left, right).

    int or (ph, pw): the same amount on both sides.
    "valid": none.
    "same" (stride 1 only): total d*(k-1) per axis so that OH = H; for an odd total the
    extra row/column goes to the bottom/right, as PyTorch does.
    """
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        sides = []
        for k, d in zip(pair(kernel_size), pair(dilation)):
            total = d * (k - 1)
            sides += [total // 2, total - total // 2]
        return tuple(sides)
    ph, pw = pair(padding)
    return ph, ph, pw, pw


def pad(x: np.ndarray, top: int, bottom: int, left: int, right: int, value: float) -> np.ndarray:
    """x (N, C, H, W) surrounded by ``value``, in float64."""
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=np.float64)
    out[:, :, top:top + h, left:left + w] = x
    return out


# -- im2col / col2im ----------------------------------------------------------------------------

def _unfold_pairs(x_shape, kernel_size, stride, padding, dilation):
    """Every (col index, xp index) pair of the unfolding, one loop per index of the definition:

        col[(n*OH + i)*OW + j, (c*KH + p)*KW + q]  <->  xp[n, c, i*SH + p*DH, j*SW + q*DW]

    also returns the col shape (N*OH*OW, C*KH*KW) and the padded shape of x.
    """
    n_, c_, h, w = x_shape
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    oh, ow = out_size(h, kh, sh, 2 * ph, dh), out_size(w, kw, sw, 2 * pw, dw)
    pairs = []
    for n in range(n_):
        for i in range(oh):
            for j in range(ow):
                for c in range(c_):
                    for p in range(kh):
                        for q in range(kw):
                            pairs.append((((n * oh + i) * ow + j, (c * kh + p) * kw + q),
                                          (n, c, i * sh + p * dh, j * sw + q * dw)))
    return pairs, (n_ * oh * ow, c_ * kh * kw), (n_, c_, h + 2 * ph, w + 2 * pw)


def im2col_ref(x, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Unfold every window of the zero-padded x into one row (see _unfold_pairs).

    rows ordered (n, oh, ow), columns ordered (c, kh, kw); returns (N*OH*OW, C*KH*KW).
    """
    pairs, col_shape, _ = _unfold_pairs(x.shape, kernel_size, stride, padding, dilation)
    ph, pw = pair(padding)
    xp = pad(x, ph, ph, pw, pw, 0.0)
    col = np.zeros(col_shape)
    for col_index, xp_index in pairs:
        col[col_index] = xp[xp_index]
    return col


def col2im_ref(col, x_shape, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """The adjoint of im2col_ref: add every entry of col back where it was read from, then
    drop the padding; returns x_shape. Overlapping windows accumulate."""
    pairs, _, padded_shape = _unfold_pairs(x_shape, kernel_size, stride, padding, dilation)
    xp = np.zeros(padded_shape)
    for col_index, xp_index in pairs:
        xp[xp_index] += col[col_index]
    ph, pw = pair(padding)
    return xp[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]


# -- convolution --------------------------------------------------------------------------------

def _conv_geometry(x, weight, stride, padding, dilation):
    """(N, F, Cg, KH, KW, SH, SW, DH, DW, xp, OH, OW), xp being x zero-padded."""
    n_, _, h, w = x.shape
    f_, cg, kh, kw = weight.shape
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    top, bottom, left, right = conv_padding(padding, (kh, kw), (dh, dw))
    xp = pad(x, top, bottom, left, right, 0.0)
    oh, ow = out_size(h, kh, sh, top + bottom, dh), out_size(w, kw, sw, left + right, dw)
    return n_, f_, cg, kh, kw, sh, sw, dh, dw, xp, oh, ow


def conv2d_ref(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Grouped, strided, dilated cross-correlation of the zero-padded x with weight.

        out[n, f, i, j] = bias[f] + sum_{c, p, q} weight[f, c, p, q]
                                      * xp[n, g*Cg + c, i*SH + p*DH, j*SW + q*DW]

    with Cg = C // groups input channels per group and g = f // (F // groups) the group of
    output channel f. padding: int, (ph, pw), "valid" or "same" (see conv_padding).
    """
    n_, f_, cg, kh, kw, sh, sw, dh, dw, xp, oh, ow = _conv_geometry(x, weight, stride, padding, dilation)
    fg = f_ // groups
    out = np.zeros((n_, f_, oh, ow))
    for n in range(n_):
        for f in range(f_):
            g = f // fg
            for i in range(oh):
                for j in range(ow):
                    acc = 0.0 if bias is None else float(bias[f])
                    for c in range(cg):
                        for p in range(kh):
                            for q in range(kw):
                                acc += float(weight[f, c, p, q]) * xp[n, g * cg + c, i * sh + p * dh,
                                                                      j * sw + q * dw]
                    out[n, f, i, j] = acc
    return out


def conv2d_backward_ref(dout, x, weight, has_bias=True, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of sum(out * dout) for conv2d_ref, one term of the forward sum at a time.

    Every product weight[f, c, p, q] * xp[n, g*Cg + c, i*SH + p*DH, j*SW + q*DW] in out[n, f, i, j]
    sends dout[n, f, i, j] times the other factor to each factor's gradient.
    returns dx (N, C, H, W), dweight (F, Cg, KH, KW), dbias (F,) or None.
    """
    n_, f_, cg, kh, kw, sh, sw, dh, dw, xp, oh, ow = _conv_geometry(x, weight, stride, padding, dilation)
    fg = f_ // groups
    dxp = np.zeros_like(xp)
    dweight = np.zeros(weight.shape)
    dbias = np.zeros(f_)
    for n in range(n_):
        for f in range(f_):
            g = f // fg
            for i in range(oh):
                for j in range(ow):
                    d = float(dout[n, f, i, j])
                    dbias[f] += d
                    for c in range(cg):
                        for p in range(kh):
                            for q in range(kw):
                                r, s = i * sh + p * dh, j * sw + q * dw
                                dxp[n, g * cg + c, r, s] += float(weight[f, c, p, q]) * d
                                dweight[f, c, p, q] += xp[n, g * cg + c, r, s] * d
    top, _, left, _ = conv_padding(padding, (kh, kw), (dh, dw))
    dx = dxp[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    return dx, dweight, (dbias if has_bias else None)


# -- pooling ------------------------------------------------------------------------------------

def _pool_geometry(x_shape, kernel_size, stride, padding):
    """(kh, kw, sh, sw, ph, pw, oh, ow); stride None means stride = kernel_size."""
    _, _, h, w = x_shape
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    return kh, kw, sh, sw, ph, pw, out_size(h, kh, sh, 2 * ph), out_size(w, kw, sw, 2 * pw)


def _max_position(xp, n, c, i, j, kh, kw, sh, sw, ph, pw):
    """(row, col) in xp of the first maximum of window (i, j), scanning rows then columns.

    Only real pixels take part: padding is never the winner, even of a window whose real
    pixels are all -inf. A later element wins only if it is strictly greater (or NaN), so on
    ties the first one scanned (top-left-most) is the argmax, as in PyTorch.
    """
    hp, wp = xp.shape[2:]
    best, where = -np.inf, None
    for p in range(kh):
        for q in range(kw):
            r, s = i * sh + p, j * sw + q
            if not (ph <= r < hp - ph and pw <= s < wp - pw):
                continue
            value = xp[n, c, r, s]
            if where is None or value > best or np.isnan(value):
                best, where = value, (r, s)
    return where


def max_pool2d_ref(x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """out[n, c, i, j] = max_{p, q} xp[n, c, i*SH + p, j*SW + q], xp padded with -inf.

    The max is over the real elements only; -inf padding never wins, not even a tie.
    """
    n_, c_, _, _ = x.shape
    kh, kw, sh, sw, ph, pw, oh, ow = _pool_geometry(x.shape, kernel_size, stride, padding)
    xp = pad(x, ph, ph, pw, pw, -np.inf)
    out = np.zeros((n_, c_, oh, ow))
    for n in range(n_):
        for c in range(c_):
            for i in range(oh):
                for j in range(ow):
                    out[n, c, i, j] = xp[(n, c) + _max_position(xp, n, c, i, j, kh, kw, sh, sw, ph, pw)]
    return out


def max_pool2d_backward_ref(dout, x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """dx: each dout[n, c, i, j] goes, whole, to the first maximum of its window.

    Overlapping windows that share a maximum add their gradients there.
    """
    n_, c_, h, w = x.shape
    kh, kw, sh, sw, ph, pw, oh, ow = _pool_geometry(x.shape, kernel_size, stride, padding)
    xp = pad(x, ph, ph, pw, pw, -np.inf)
    dxp = np.zeros_like(xp)
    for n in range(n_):
        for c in range(c_):
            for i in range(oh):
                for j in range(ow):
                    r, s = _max_position(xp, n, c, i, j, kh, kw, sh, sw, ph, pw)
                    dxp[n, c, r, s] += dout[n, c, i, j]
    return dxp[:, :, ph:ph + h, pw:pw + w]


def _avg_divisor(h, w, i, j, kh, kw, sh, sw, ph, pw, count_include_pad) -> int:
    """kh*kw, or with count_include_pad=False the number of window cells inside x."""
    if count_include_pad:
        return kh * kw
    rows = sum(1 for p in range(kh) if ph <= i * sh + p < ph + h)
    cols = sum(1 for q in range(kw) if pw <= j * sw + q < pw + w)
    return rows * cols


def avg_pool2d_ref(x, kernel_size, stride=None, padding=0, count_include_pad=True) -> np.ndarray:
    """out[n, c, i, j] = sum_{p, q} xp[n, c, i*SH + p, j*SW + q] / divisor, xp zero-padded.

    divisor = KH*KW with count_include_pad (padding counts as zeros), else the number of
    window cells that lie inside x.
    """
    n_, c_, h, w = x.shape
    kh, kw, sh, sw, ph, pw, oh, ow = _pool_geometry(x.shape, kernel_size, stride, padding)
    xp = pad(x, ph, ph, pw, pw, 0.0)
    out = np.zeros((n_, c_, oh, ow))
    for n in range(n_):
        for c in range(c_):
            for i in range(oh):
                for j in range(ow):
                    total = 0.0
                    for p in range(kh):
                        for q in range(kw):
                            total += xp[n, c, i * sh + p, j * sw + q]
                    out[n, c, i, j] = total / _avg_divisor(h, w, i, j, kh, kw, sh, sw, ph, pw,
                                                           count_include_pad)
    return out


def avg_pool2d_backward_ref(dout, x_shape, kernel_size, stride=None, padding=0,
                            count_include_pad=True) -> np.ndarray:
    """dx: each dout[n, c, i, j] / divisor goes to every cell of its window (padding dropped)."""
    n_, c_, h, w = x_shape
    kh, kw, sh, sw, ph, pw, oh, ow = _pool_geometry(x_shape, kernel_size, stride, padding)
    dxp = np.zeros((n_, c_, h + 2 * ph, w + 2 * pw))
    for n in range(n_):
        for c in range(c_):
            for i in range(oh):
                for j in range(ow):
                    share = dout[n, c, i, j] / _avg_divisor(h, w, i, j, kh, kw, sh, sw, ph, pw,
                                                            count_include_pad)
                    for p in range(kh):
                        for q in range(kw):
                            dxp[n, c, i * sh + p, j * sw + q] += share
    return dxp[:, :, ph:ph + h, pw:pw + w]


# -- the rest of PyTorch's pooling, and transposed convolution -------------------------------------
def pool_out_size(size, kernel, stride, pad, dilation=1, ceil_mode=False):
    """PyTorch's pooled size: floor or ceil of the window count, and with ceil_mode a last window
    must start inside the input or its left padding."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    outs = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (outs - 1) * stride >= size + pad:
        outs -= 1
    return outs


def max_pool2d_full_ref(x, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """Max over each dilated window, padding and the ceil overhang as -inf; a loop per index."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel_size, stride, padding, dilation))
    n, c, h, w = x.shape
    oh, ow = pool_out_size(h, kh, sh, ph, dh, ceil_mode), pool_out_size(w, kw, sw, pw, dw, ceil_mode)
    out = np.full((n, c, oh, ow), -np.inf)
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    for a in range(kh):
                        for e in range(kw):
                            r, q = i * sh - ph + a * dh, j * sw - pw + e * dw
                            if 0 <= r < h and 0 <= q < w:
                                out[b, ch, i, j] = max(out[b, ch, i, j], float(x[b, ch, r, q]))
    return out


def avg_pool2d_full_ref(x, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True,
                        divisor_override=None):
    """The mean of each window: the padding counts (count_include_pad), the ceil overhang never."""
    (kh, kw), (sh, sw), (ph, pw) = map(pair, (kernel_size, stride, padding))
    n, c, h, w = x.shape
    oh, ow = pool_out_size(h, kh, sh, ph, 1, ceil_mode), pool_out_size(w, kw, sw, pw, 1, ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    total, real, padded = 0.0, 0, 0
                    for a in range(kh):
                        for e in range(kw):
                            r, q = i * sh - ph + a, j * sw - pw + e
                            if -ph <= r < h + ph and -pw <= q < w + pw:
                                padded += 1
                            if 0 <= r < h and 0 <= q < w:
                                total += float(x[b, ch, r, q])
                                real += 1
                    out[b, ch, i, j] = total / (divisor_override or (padded if count_include_pad else real))
    return out


def adaptive_ref(x, output_size, reduce):
    """reduce (np.max or np.mean) over each adaptive window [floor(i*L/O), ceil((i+1)*L/O))."""
    n, c, h, w = x.shape
    oh, ow = output_size
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = (i * h) // oh, -(-((i + 1) * h) // oh)
            c0, c1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            out[:, :, i, j] = reduce(x[:, :, r0:r1, c0:c1].astype(np.float64), axis=(2, 3))
    return out


def conv_transpose2d_ref(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Each input pixel times the kernel, added onto its window of the output; a loop per index."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = map(pair, (stride, padding, output_padding, dilation))
    n, c_in, h, w = x.shape
    _, f_g, kh, kw = weight.shape
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    out = np.zeros((n, f_g * groups, oh, ow))
    c_g = c_in // groups
    for b in range(n):
        for ci in range(c_in):
            g = ci // c_g
            for fo in range(f_g):
                for i in range(h):
                    for j in range(w):
                        for a in range(kh):
                            for e in range(kw):
                                r, q = i * sh - ph + a * dh, j * sw - pw + e * dw
                                if 0 <= r < oh and 0 <= q < ow:
                                    out[b, g * f_g + fo, r, q] += float(x[b, ci, i, j]) * float(weight[ci, fo, a, e])
    if bias is not None:
        out += np.asarray(bias, np.float64)[None, :, None, None]
    return out
