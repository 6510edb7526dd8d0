"""Max and average pooling, forward and backward side by side.

Both loop over kernel taps, never over pixels: a tap is one strided slice of the input holding
that tap's pixel for every window at once. Max pooling visits the KH*KW taps of the padded
input; average pooling is separable, KH taps down then KW along, and skips the padding.
Unlike the textbook code, the stride defaults to the kernel size and padding enters the
output size. The textbook's version (im2col, then the max or the mean of each row) is
``functional.reference``: read it first; the tests hold these kernels to it.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module, on_host
from ..errors import ConfigError
from ..runtime import each_share, scratch
from .validate import check_float_array
from .window import Window, make_window, pad, padded_shape, pair, resolve_padding, unpad

# The work each_share is told of, in element-passes of the output per tap: max pooling's tap is
# several NumPy passes (a copy, a comparison, the winner's update, a maximum), weighed so that
# threads take it where they pay (docs/design.md); its backward's, a comparison and a product
# (and a sum where windows overlap).
MAX_TAP_PASSES = 3
ROUTE_TAP_PASSES = 2


def pool_params(kernel_size, stride=None, padding=0, op: str = "pool2d", dilation=1):
    """Validate pooling arguments: (kernel, stride, pads, dilation), pads as (top, bottom, left,
    right) or the string "same"; stride defaults to the kernel.

    padding: an int or a pair (PyTorch's: at most half the kernel), a 4-tuple (top, bottom, left,
    right: each side at most the effective kernel less one, so that every window touches the
    input), or "same" (resolved per input in ``pool_window``: ONNX's SAME_UPPER).
    """
    kernel = pair(kernel_size, f"{op}: kernel_size", 1)
    stride = kernel if stride is None else pair(stride, f"{op}: stride", 1)
    dilation = pair(dilation, f"{op}: dilation", 1)
    if padding == "same":
        return kernel, stride, "same", dilation
    if isinstance(padding, str):
        raise ConfigError(f"{op}: padding must be an int, a pair, a 4-tuple or 'same', got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        pads = resolve_padding(tuple(padding), kernel, dilation, stride)
        reach = (dilation[0] * (kernel[0] - 1),) * 2 + (dilation[1] * (kernel[1] - 1),) * 2
        if any(p > r for p, r in zip(pads, reach)):
            raise ConfigError(f"{op}: a side's padding must be at most the effective kernel less one "
                              f"{(reach[0], reach[2])}, got (top, bottom, left, right) = {pads}")
        return kernel, stride, pads, dilation
    ph, pw = pair(padding, f"{op}: padding")
    # PyTorch's rule: a window must always overlap the real input.
    if ph > kernel[0] // 2 or pw > kernel[1] // 2:
        raise ConfigError(f"{op}: padding must be at most half the kernel size {kernel}, got {(ph, pw)}")
    return kernel, stride, (ph, ph, pw, pw), dilation


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(before, after) of ONNX's SAME_UPPER along one axis: ceil(size / stride) outputs, the odd
    row or column of padding after."""
    total = max((-(-size // stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def _ceil_extra(size: int, kernel: int, stride: int, before: int, after: int, dilation: int) -> int:
    """Rows (or columns) to add after the input so that the floor formula gives ceil_mode's
    output size: ceil((size + before + after - dilation*(kernel-1) - 1) / stride) + 1 windows,
    less one if the last would start beyond the input and its left padding (PyTorch's rule)."""
    span = size + before + after - dilation * (kernel - 1) - 1
    outs = -(-span // stride) + 1
    if (outs - 1) * stride >= size + before:
        outs -= 1
    return max(0, (outs - 1) * stride - span)


def pool_pads(x_shape, kernel_size, stride, padding, op: str = "pool2d", dilation=1) -> tuple[int, int, int, int]:
    """The (top, bottom, left, right) padding a pool of an (N, C, H, W) input asks for, "same"
    resolved for its size; ceil_mode's extra rows and columns are not in it."""
    kernel, stride, pads, dilation = pool_params(kernel_size, stride, padding, op, dilation)
    if pads != "same":
        return pads
    h, w = x_shape[-2:]
    return same_pads(h, kernel[0], stride[0], dilation[0]) + same_pads(w, kernel[1], stride[1], dilation[1])


def pool_window(x_shape, kernel_size, stride, padding, op: str = "pool2d", dilation=1,
                ceil_mode: bool = False) -> Window:
    """The pooling geometry of an (N, C, H, W) input; with ceil_mode the input is padded past its
    right and bottom edges by what the last, partial window needs (``_ceil_extra``), so that, as
    in PyTorch, an input smaller than the kernel still has one window."""
    kernel, stride, _, dilation = pool_params(kernel_size, stride, padding, op, dilation)
    top, bottom, left, right = pool_pads(x_shape, kernel, stride, padding, op, dilation)
    h, w = x_shape[-2:]
    if ceil_mode:
        bottom += _ceil_extra(h, kernel[0], stride[0], top, bottom, dilation[0])
        right += _ceil_extra(w, kernel[1], stride[1], left, right, dilation[1])
    return make_window((1, 1, h, w), kernel, stride, (top, bottom, left, right), dilation, op)


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over each window; padding counts as -inf.

    Ties go to the first maximum in row-major tap order, and NaN wins, both as in PyTorch.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.
    kernel_size : int or pair of int
        (KH, KW).
    stride : int, pair of int or None, default None
        (SH, SW); None is the kernel size.
    padding : int, pair, 4-tuple or "same", default 0
        Padding, counted as -inf: an int or a pair at most half the kernel (PyTorch's rule), a
        4-tuple (top, bottom, left, right) each at most the effective kernel less one, or
        "same" (ONNX's SAME_UPPER).
    dilation : int or pair of int, default 1
        (DH, DW), the spacing of the window's taps.
    ceil_mode : bool, default False
        Round the output size up, so a last, partial window is kept (it must start inside the
        input or its left padding), as in PyTorch.

    Returns
    -------
    out : ndarray, shape (N, C, OH, OW)
        Each window's maximum.
    cache : tuple
        What ``max_pool2d_backward`` needs: the winning tap of each window.
    """
    xp = get_array_module(x)
    x = check_float_array(x, "max_pool2d", 4)
    win = pool_window(x.shape, kernel_size, stride, padding, "max_pool2d", dilation, ceil_mode)
    taps = list(win.offsets())
    out = xp.empty(x.shape[:2] + (win.oh, win.ow), dtype=x.dtype)
    arg = xp.empty(out.shape, dtype=np.int16 if len(taps) < 2**15 else np.int32)
    # Each window starts out pointing at its first real pixel, never at padding: a window of
    # -inf values (real ones tie with the -inf padding, and ties never move the winner) then
    # sends its gradient into the input, as PyTorch does.
    first = _first_real_tap(xp, win)

    def pool(part):
        x_pad = pad(x[part], win.pads, -np.inf)
        o, a = out[part], arg[part]
        o[...] = x_pad[:, :, taps[0][2], taps[0][3]]
        a[...] = first
        # Each tap is copied once into a contiguous buffer: every later pass over it then runs
        # over one long vector, where a pass over the strided tap itself runs row by short row.
        cur = scratch("max_pool.tap", o.shape, o.dtype, xp)
        better = scratch("max_pool.better", o.shape, bool, xp)
        for k, (_, _, rows, cols) in enumerate(taps[1:], start=1):
            cur[...] = x_pad[:, :, rows, cols]
            xp.greater(cur, o, out=better)
            # Taps come in increasing k, so the winner is the LAST tap that beat the running
            # max: arg = max(arg, k * better). Arithmetic passes, far cheaper than masked copies.
            xp.maximum(a, better * a.dtype.type(k), out=a)
            xp.maximum(o, cur, out=o)  # propagates NaN, as PyTorch does
        # PyTorch's rule is "val > max or isnan(val)": a NaN tap wins, the last one if several.
        # A NaN in any window makes its output NaN, so the winners are only redone then (on a
        # GPU asking would stop the queue for a host sync, and redoing costs less).
        if not on_host(xp) or xp.isnan(o.sum()):
            _nan_winners(x_pad, taps, a, first)

    each_share(pool, len(x), out.size * len(taps) * MAX_TAP_PASSES, on_host(xp))
    return out, (arg, x.shape, padded_shape(x.shape, win.pads), win)


def _nan_winners(x_pad, taps, arg, first):
    """Redo max pooling's winners (arg, written in place) with PyTorch's NaN rule: tap k beats
    the running max m when x_k > m or x_k is NaN."""
    xp = get_array_module(x_pad)
    best = x_pad[:, :, taps[0][2], taps[0][3]].copy()
    arg[...] = first
    for k, (_, _, rows, cols) in enumerate(taps[1:], start=1):
        cur = x_pad[:, :, rows, cols]
        better = (cur > best) | xp.isnan(cur)
        xp.maximum(arg, better * arg.dtype.type(k), out=arg)
        xp.maximum(best, cur, out=best)  # a NaN max stays: later reals never beat it


def _first_real_tap(xp, win: Window):
    """(OH, OW): the row-major index of each window's first tap that lands inside the input.

    Along one axis, output o's window starts at o*stride - pad_before; its first real tap is
    the number of padded positions before the input starts, ceil(-start / dilation) when > 0.
    """
    def first(outs, stride, before, dilation):
        start = xp.arange(outs) * stride - before
        return xp.where(start < 0, -(start // dilation), 0)

    rows = first(win.oh, win.sh, win.pads[0], win.dh)
    cols = first(win.ow, win.sw, win.pads[2], win.dw)
    return rows[:, None] * win.kw + cols[None, :]


def max_pool2d_backward(dout, cache):
    """Route each window's gradient to its winning input pixel.

    Parameters
    ----------
    dout : ndarray, shape (N, C, OH, OW)
        The gradient of the output.
    cache : tuple
        What ``max_pool2d_forward`` returned beside its output.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        Overlapping windows that share a winner add up.
    """
    xp = get_array_module(dout)
    arg, x_shape, padded_shape, win = cache
    dout = _check_dout(dout, arg.shape, "max_pool2d_backward")
    # Windows that cannot overlap write each input pixel at most once: assign, don't add.
    disjoint = win.sh >= win.dh * (win.kh - 1) + 1 and win.sw >= win.dw * (win.kw - 1) + 1
    alloc = xp.empty if disjoint and _covers(padded_shape, win) else xp.zeros
    dx_pad = alloc(padded_shape, dtype=dout.dtype)

    def route(part):
        d, a, dx = dout[part], arg[part], dx_pad[part]
        for k, (_, _, rows, cols) in enumerate(win.offsets()):
            if disjoint:  # write straight into the tap's pixels
                xp.multiply(d, a == k, out=dx[:, :, rows, cols])
            else:
                dx[:, :, rows, cols] += d * (a == k)

    each_share(route, len(dout), dout.size * win.kh * win.kw * (ROUTE_TAP_PASSES + (not disjoint)), on_host(xp))
    return unpad(dx_pad, win.pads)


def _covers(padded_shape, win: Window) -> bool:
    """Do the windows tile the padded input exactly (every pixel in exactly one window)?"""
    return (win.sh == win.kh and win.sw == win.kw and win.dh == win.dw == 1
            and win.oh * win.kh == padded_shape[2] and win.ow * win.kw == padded_shape[3])


def _axis_taps(size: int, kernel: int, stride: int, before: int, outs: int):
    """Along one axis: (output slice, input slice) for each tap, padding left out.

    Tap t of output o reads input o*stride + t - before. Only the outputs whose tap lands
    inside the input take part (zero padding adds nothing), so no padded copy is needed. A
    tap that reaches every output comes first, to initialise the sum.
    """
    taps = []
    for t in range(kernel):
        shift = t - before
        lo = -(shift // stride) if shift < 0 else 0          # first o with o*stride + shift >= 0
        hi = min(outs, (size - 1 - shift) // stride + 1)    # one past the last with < size
        if hi > lo:
            first = lo * stride + shift
            taps.append((slice(lo, hi), slice(first, first + (hi - lo - 1) * stride + 1, stride)))
    return sorted(taps, key=lambda tap: tap[0] != slice(0, outs))


def _window_sum(x, taps, axis: int, outs: int):
    """Sum x (N, C, H, W) over the taps along axis 2 or 3, giving that axis length outs."""
    xp = get_array_module(x)
    index = (slice(None),) * axis
    shape = x.shape[:axis] + (outs,) + x.shape[axis + 1:]
    (out_part, in_part), rest = taps[0], taps[1:]
    if out_part == slice(0, outs):
        out = x[index + (in_part,)].copy()
    else:
        out, rest = xp.zeros(shape, dtype=x.dtype), taps
    for out_part, in_part in rest:
        out[index + (out_part,)] += x[index + (in_part,)]
    return out


def _window_spread(d, taps, axis: int, size: int, out=None):
    """Adjoint of _window_sum: add d's entries back onto the positions they summed (into out,
    zeroed first, if given)."""
    xp = get_array_module(d)
    index = (slice(None),) * axis
    if out is None:
        dx = xp.zeros(d.shape[:axis] + (size,) + d.shape[axis + 1:], dtype=d.dtype)
    else:
        dx = out
        dx.fill(0)
    for out_part, in_part in taps:
        dx[index + (in_part,)] += d[index + (out_part,)]
    return dx


def _avg_taps(x_shape, win: Window):
    """(taps down the rows, taps along the columns) of an average pool on x_shape."""
    h, w = x_shape[2:]
    return (_axis_taps(h, win.kh, win.sh, win.pads[0], win.oh),
            _axis_taps(w, win.kw, win.sw, win.pads[2], win.ow))


def _avg_divisor(x, win: Window, count_include_pad: bool, divisor_override=None, extra=(0, 0)):
    """Number of elements each window of x (N, C, H, W) is divided by: a scalar of x's dtype,
    or (OH, OW) where windows differ, as PyTorch counts them.

    A window counts the padding (count_include_pad) but not what ceil_mode adds past it; without
    count_include_pad, only real pixels. Either count factorises into rows times columns.
    divisor_override, if given, replaces the count.
    """
    if divisor_override is not None:
        return x.dtype.type(divisor_override)
    xp = get_array_module(x)

    def count(size, k, s, before, after, outs):
        start = xp.arange(outs) * s - before
        end = xp.minimum(start + k, size + after)
        return end - start if count_include_pad else xp.minimum(end, size) - xp.maximum(start, 0)

    # extra: the rows and columns ceil_mode added past the padding, which never count
    rows = count(x.shape[2], win.kh, win.sh, win.pads[0], win.pads[1] - extra[0], win.oh)
    cols = count(x.shape[3], win.kw, win.sw, win.pads[2], win.pads[3] - extra[1], win.ow)
    if bool((rows == win.kh).all()) and bool((cols == win.kw).all()):
        return x.dtype.type(win.kh * win.kw)
    return xp.outer(rows, cols).astype(x.dtype)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True, ceil_mode=False,
                       divisor_override=None):
    """Mean over each window; zero padding, counted in the divisor unless count_include_pad=False.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.
    kernel_size : int or pair of int
        (KH, KW).
    stride : int, pair of int or None, default None
        (SH, SW); None is the kernel size.
    padding : int, pair, 4-tuple or "same", default 0
        Zero padding, as ``max_pool2d_forward`` takes it.
    count_include_pad : bool, default True
        Count the padding in each window's divisor.
    ceil_mode : bool, default False
        Round the output size up, as in ``max_pool2d_forward``.
    divisor_override : int or None, default None
        Divide every window's sum by this number instead of its count, as PyTorch's argument does.

    Returns
    -------
    out : ndarray, shape (N, C, OH, OW)
        Each window's mean.
    cache : tuple
        What ``avg_pool2d_backward`` needs.
    """
    x = check_float_array(x, "avg_pool2d", 4)
    if divisor_override is not None and (isinstance(divisor_override, bool) or
                                         not isinstance(divisor_override, (int, np.integer)) or divisor_override < 1):
        raise ConfigError(f"avg_pool2d: divisor_override must be a positive int or None, got {divisor_override!r}")
    win = pool_window(x.shape, kernel_size, stride, padding, "avg_pool2d", 1, ceil_mode)
    # ceil_mode only adds rows and columns after the padding, which the divisor never counts
    pads = pool_pads(x.shape, kernel_size, stride, padding, "avg_pool2d")
    row_taps, col_taps = _avg_taps(x.shape, win)
    # A window sum is separable: KH + KW passes instead of KH * KW. Down the columns first,
    # where each tap is whole contiguous rows, so the strided pass along the rows runs on
    # the smaller array; padding is never materialised.
    xp = get_array_module(x)
    extra = (win.pads[1] - pads[1], win.pads[3] - pads[3])
    divisor = _avg_divisor(x, win, count_include_pad, divisor_override, extra)
    out = xp.empty(x.shape[:2] + (win.oh, win.ow), dtype=x.dtype)

    def average(part):
        total = _window_sum(_window_sum(x[part], row_taps, 2, win.oh), col_taps, 3, win.ow)
        xp.divide(total, divisor, out=out[part])

    each_share(average, len(x), out.size * win.kh * win.kw, on_host(xp))
    return out, (divisor, x.shape, win)


def avg_pool2d_backward(dout, cache):
    """Spread each window's gradient evenly over the pixels it averaged.

    Parameters
    ----------
    dout : ndarray, shape (N, C, OH, OW)
        The gradient of the output.
    cache : tuple
        What ``avg_pool2d_forward`` returned beside its output.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        The input gradient.
    """
    divisor, x_shape, win = cache
    dout = _check_dout(dout, x_shape[:2] + (win.oh, win.ow), "avg_pool2d_backward")
    row_taps, col_taps = _avg_taps(x_shape, win)
    xp = get_array_module(dout)
    dx = xp.empty(x_shape, dtype=dout.dtype)

    def spread(part):
        share = dout[part] / divisor
        _window_spread(_window_spread(share, col_taps, 3, x_shape[3]), row_taps, 2, x_shape[2], out=dx[part])

    each_share(spread, len(dout), dout.size * win.kh * win.kw, on_host(xp))
    return dx


def global_avg_pool2d(x):
    """Mean over all spatial positions.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.

    Returns
    -------
    ndarray, shape (N, C, 1, 1)
        Each channel's mean.
    """
    x = check_float_array(x, "global_avg_pool2d", 4)
    return x.mean(axis=(2, 3), keepdims=True)


def global_avg_pool2d_backward(dout, x_shape):
    """Every pixel gets 1/(H*W) of its channel's gradient.

    Parameters
    ----------
    dout : ndarray, shape (N, C, 1, 1)
        The gradient of the output.
    x_shape : tuple of int, shape (4,)
        The input's shape, (N, C, H, W).

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        The input gradient.
    """
    xp = get_array_module(dout)
    n, c, h, w = x_shape
    dout = _check_dout(dout, (n, c, 1, 1), "global_avg_pool2d_backward")
    dx = xp.empty(x_shape, dtype=dout.dtype)
    dx[...] = dout / dout.dtype.type(h * w)
    return dx


def _check_dout(dout, shape, op: str) -> np.ndarray:
    return check_float_array(dout, op, 4, what="dout", shape=shape)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> np.ndarray:
    """Forward max pooling only: ``max_pool2d_forward``'s output without the cache.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.
    kernel_size, stride, padding, dilation, ceil_mode
        As ``max_pool2d_forward`` takes them.

    Returns
    -------
    ndarray, shape (N, C, OH, OW)
        Each window's maximum.
    """
    return max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)[0]


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True, ceil_mode=False,
               divisor_override=None) -> np.ndarray:
    """Forward average pooling only: ``avg_pool2d_forward``'s output without the cache.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Float input.
    kernel_size, stride, padding, count_include_pad, ceil_mode, divisor_override
        As ``avg_pool2d_forward`` takes them.

    Returns
    -------
    ndarray, shape (N, C, OH, OW)
        Each window's mean.
    """
    return avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad, ceil_mode, divisor_override)[0]
