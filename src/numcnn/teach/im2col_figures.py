"""Figures of im2col and its kin: the column matrix coloured by the input pixel each entry was
copied from, one kernel tap as one strided slice, the GEMM's shapes, col2im's count map, and
the input gradient as a full convolution with the flipped kernel."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .canvas import CURRENT, NEXT, PAD, Board, drawing, pastel
from .words import say


def _pixel_ids(shape, padding):
    """Each pixel's number + 1, padded with zeros: (C, Hp, Wp) floats (0 = padding)."""
    ids = np.arange(1, int(np.prod(shape)) + 1, dtype=np.float64).reshape(shape)
    return np.pad(ids, [(0, 0), (padding, padding), (padding, padding)])


def _id_grid(ids, colours, values=None):
    """Numbers and colours of cells holding pixel ids (0 = padding): a pixel shows its number,
    or its value from ``values`` (flat, by pixel), in its own colour."""
    text = [[("0" if values is not None else "·") if v == 0 else
             (int(v) - 1 if values is None else values[int(v) - 1]) for v in row] for row in ids]
    fill = [[PAD if v == 0 else colours[int(v) - 1] for v in row] for row in ids]
    return text, fill


@drawing
def im2col_matrix(shape, kernel_size, stride=1, padding=0, values=None, row=0, mark_max=False):
    """The input next to its im2col matrix, every entry coloured by the input pixel it copies.

    Parameters
    ----------
    shape : tuple of int
        (C, H, W) or (H, W) of one image.
    kernel_size, stride, padding
        As ``functional.im2col`` takes them.
    values : ndarray, optional
        An array of that shape to write in the cells; None writes each pixel's number.
    row : int, default 0
        The row (window) framed in the matrix and in the input.
    mark_max : bool, default False
        Circle each row's largest value (pooling through im2col and argmax).
    """
    shape = tuple(shape) if len(shape) == 3 else (1, *shape)
    c_count, h, w = shape
    k = kernel_size
    colours = pastel(int(np.prod(shape)))
    flat = None if values is None else [float(v) for v in np.asarray(values).ravel()]
    ids = _pixel_ids(shape, padding)
    col = F.im2col(_pixel_ids(shape, 0)[None], k, stride, padding)  # each entry: the pixel it copies, 0 = padding
    oh = F.output_size(h, k, stride, padding, padding, 1)
    ow = F.output_size(w, k, stride, padding, padding, 1)
    board = Board()
    hp = h + 2 * padding
    for c in range(c_count):
        top = c * (hp + 1.5)
        text, fill = _id_grid(ids[c], colours, flat)
        board.grid(top, 0, text, colours=fill, fontsize=8, fmt="{:.3g}")
        i, j = divmod(row, ow)
        board.frame(top + i * stride, j * stride, k, k)
        if c_count > 1:
            board.caption(top, 0, ids.shape[2], say("channel {c}", c=c), size=9)
    left = ids.shape[2] + 4
    text, fill = _id_grid(col, colours, flat)
    bold = None
    if mark_max:
        bold = np.zeros(col.shape, bool)
        windows = F.im2col(np.asarray(values, np.float64).reshape(1, *shape), k, stride, padding)
        bold[np.arange(col.shape[0]), np.argmax(windows, axis=1)] = True  # the first maximum, as argmax
    board.grid(0, left, text, colours=fill, fontsize=8, fmt="{:.3g}", bold=bold)
    if mark_max:
        for r, c in zip(*np.nonzero(bold)):
            board.ring(r, left + c)
    board.frame(row, left, 1, col.shape[1])
    for r in range(col.shape[0]):
        board.text(r + 0.5, left - 0.3, f"({r // ow}, {r % ow})", size=7, ha="right")
    for t in range(col.shape[1]):
        c, rest = divmod(t, k * k)
        board.text(-0.9, left + t + 0.5, f"{c},{rest // k},{rest % k}", size=6)
    board.text(col.shape[0] + 0.8, left + col.shape[1] / 2,
               f"{say('windows')} ({oh}·{ow}) × {say('taps (c, i, j)')} ({c_count}·{k}·{k})", size=9)
    board.arrow((min(hp, col.shape[0]) / 2, ids.shape[2] + 0.4), (min(hp, col.shape[0]) / 2, left - 2.6))
    board.title = say("im2col: one row per window, one column per kernel tap")
    return board


@drawing
def im2col_taps(shape, kernel_size, stride=1, padding=0, taps=((0, 0), (1, 2))):
    """For each kernel tap (i, j): the pixels that tap sees in every window.

    They are one strided slice of the padded input, and fill an OH x OW grid (one column of col).

    Parameters
    ----------
    shape : tuple of int
        (H, W) of a one-channel input.
    kernel_size, stride, padding
        As ``functional.im2col`` takes them.
    taps : sequence of tuple of int
        (i, j) pairs, one row of the figure each.
    """
    h, w = shape
    k, s = kernel_size, stride
    oh, ow = F.output_size(h, k, s, padding, padding, 1), F.output_size(w, k, s, padding, padding, 1)
    ids = _pixel_ids((1, h, w), padding)[0]
    colours = pastel(h * w)
    board = Board()
    for n, (i, j) in enumerate(taps):
        top = n * (ids.shape[0] + 3)
        text, fill = _id_grid(ids, colours)
        picked = ids[i:i + s * oh:s, j:j + s * ow:s]
        faded = [[(0.97, 0.97, 0.97, 1.0) for _ in row] for row in fill]
        for r in range(oh):
            for c in range(ow):
                faded[i + s * r][j + s * c] = fill[i + s * r][j + s * c]
        board.grid(top, 0, text, colours=faded, fontsize=8)
        for r in range(oh):
            for c in range(ow):
                board.ring(top + i + s * r, j + s * c)
        board.frame(top, 0, k, k, NEXT, dashed=True, lw=2)
        board.caption(top, 0, ids.shape[1], say("img[{i}:{i}+{s}·{oh}:{s}, {j}:{j}+{s}·{ow}:{s}]",
                                                i=i, j=j, s=s, oh=oh, ow=ow), size=9)
        left = ids.shape[1] + 3
        pt = top + (ids.shape[0] - oh) / 2
        board.arrow((top + ids.shape[0] / 2, ids.shape[1] + 0.3), (top + ids.shape[0] / 2, left - 0.3))
        text, fill = _id_grid(picked, colours)
        board.grid(pt, left, text, colours=fill, fontsize=8)
        board.caption(pt, left, ow, say("column ({i}, {j}) of col, as an OH×OW grid", i=i, j=j), size=9)
        board.text(top + ids.shape[0] / 2, -0.5, say("tap (i, j) = ({i}, {j}) of every window: one strided slice",
                                                     i=i, j=j), size=9, ha="right")
    return board


def _rectangle(board, left, rows, cols, colour, name, numbers):
    """A matrix as a rectangle centred on row 0, sides growing with log2 of its shape; its
    name above, its shape on a common line below."""
    height, width = 1.2 + 0.9 * np.log2(rows), 1.2 + 0.9 * np.log2(cols)
    board.block(-height / 2, left, height, width, 0, colour)
    board.caption(-height / 2, left, width, name, size=9)
    board.text(5.5, left + width / 2, numbers, size=9, va="top")
    return left + width


@drawing
def gemm(x_shape, out_channels, kernel_size, stride=1, padding=0):
    """The shapes of convolution as one matrix product: col (N·OH·OW, C·K·K) times the
    flattened filters (C·K·K, FN) gives (N·OH·OW, FN), reshaped and transposed to (N, FN, OH, OW)."""
    n, c, h, w = x_shape
    k, f = kernel_size, out_channels
    oh, ow = F.output_size(h, k, stride, padding, padding, 1), F.output_size(w, k, stride, padding, padding, 1)
    colours = pastel(3)
    board = Board()
    right = _rectangle(board, 0, n * oh * ow, c * k * k, colours[0], say("col"),
                       f"(N·OH·OW, C·FH·FW)\n= ({n * oh * ow}, {c * k * k})")
    board.text(0, right + 0.8, "@", size=14)
    right = _rectangle(board, right + 1.6, c * k * k, f, colours[1], say("W reshaped, transposed"),
                       f"(C·FH·FW, FN)\n= ({c * k * k}, {f})")
    board.text(0, right + 0.8, "=", size=14)
    right = _rectangle(board, right + 1.6, n * oh * ow, f, colours[2], say("out"),
                       f"(N·OH·OW, FN)\n= ({n * oh * ow}, {f})")
    board.arrow((0, right + 0.5), (0, right + 3.5), say("reshape, transpose"))
    board.text(0, right + 4, f"(N, FN, OH, OW)\n= ({n}, {f}, {oh}, {ow})", size=10, ha="left")
    board.title = say("convolution as one matrix product (GEMM)")
    return board


@drawing
def count_map(shape, kernel_size, stride=1, padding=0, windows=()):
    """col2im of a matrix of ones: how many windows read each input pixel.

    Parameters
    ----------
    shape : tuple of int
        (H, W).
    kernel_size, stride, padding
        As ``functional.col2im`` takes them.
    windows : sequence of int
        Indices (row by row) of windows to frame.
    """
    h, w = shape
    k = kernel_size
    ow = F.output_size(w, k, stride, padding, padding, 1)
    oh = F.output_size(h, k, stride, padding, padding, 1)
    counts = F.col2im(np.ones((oh * ow, k * k)), (1, 1, h, w), k, stride, padding)[0, 0]
    import matplotlib

    shade = matplotlib.colormaps["Greens"]
    board = Board()
    board.grid(0, 0, counts, colours=[[shade(0.05 + 0.45 * v / counts.max()) for v in row] for row in counts])
    colours = [CURRENT, NEXT, "tab:green", "tab:purple", "tab:orange"]
    for n, index in enumerate(windows):
        i, j = divmod(index, ow)
        board.frame(i * stride - padding, j * stride - padding, k, k, colours[n % len(colours)], lw=2.5)
    board.title = say("col2im(ones): how many windows read each pixel")
    return board


@drawing
def full_convolution(dout, kernel, step=0):
    """The input gradient of a stride-1 convolution drawn as a convolution.

    dout is padded by K - 1, the kernel turned 180 degrees, sliding as in the forward pass.

    Parameters
    ----------
    dout : ndarray, shape (OH, OW)
        The output gradient.
    kernel : ndarray, shape (K, K)
        The kernel.
    step : int, default 0
        Which window is drawn as the current one, as in ``sliding_window``.
    """
    dout, kernel = np.asarray(dout, np.float64), np.asarray(kernel, np.float64)
    k = kernel.shape[0]
    flipped = kernel[::-1, ::-1]
    padded = np.pad(dout, k - 1)
    dx = F.conv2d(padded[None, None], flipped[None, None])[0, 0]
    board = Board()
    board.grid(0, 0, kernel)
    board.caption(0, 0, k, say("kernel"), size=9)
    board.arrow((k / 2, k + 0.3), (k / 2, k + 1.7))
    board.grid(0, k + 2, flipped)
    board.caption(0, k + 2, k, say("kernel flipped 180°"), size=9)
    top = k + 2.5
    colours = [[PAD if min(r, c) < k - 1 or r >= k - 1 + dout.shape[0] or c >= k - 1 + dout.shape[1] else None
                for c in range(padded.shape[1])] for r in range(padded.shape[0])]
    board.grid(top, 0, padded, colours=colours, fmt="{:.3g}")
    board.caption(top, 0, padded.shape[1], say("dout padded by K − 1 = {p}", p=k - 1), size=9)
    i, j = divmod(step, dx.shape[1])
    board.frame(top + i, j, k, k)
    if j + 1 < dx.shape[1]:
        board.frame(top + i, j + 1, k, k, NEXT, dashed=True)
    left = padded.shape[1] + 2
    pt = top + (padded.shape[0] - dx.shape[0]) / 2
    board.arrow((top + padded.shape[0] / 2, padded.shape[1] + 0.3), (top + padded.shape[0] / 2, left - 0.3))
    board.grid(pt, left, dx, fmt="{:.3g}")
    board.frame(pt + i, left + j, 1, 1, CURRENT, lw=2.5)
    board.caption(pt, left, dx.shape[1], say("dx = full convolution with the flipped kernel"), size=9)
    return board
