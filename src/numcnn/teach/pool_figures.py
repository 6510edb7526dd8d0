"""Figures of pooling: each window and its winner, where the gradient goes, what padding leaves
of a corner window, and what a one-pixel shift does to a max-pooled map."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..layers import AvgPool2d, MaxPool2d
from .canvas import CURRENT, PAD, Board, drawing, pastel
from .words import say


def _windows(shape, k, s):
    """(top, left) of every window, row by row."""
    oh, ow = (shape[0] - k) // s + 1, (shape[1] - k) // s + 1
    return [(i * s, j * s) for i in range(oh) for j in range(ow)], (oh, ow)


@drawing
def pooling(x, kernel_size=2, stride=None, dout=None, mode="max"):
    """Pooling windows on a small input, each window's winner (max) and the output.

    With ``dout``, also where backward sends each output's gradient.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        The input.
    kernel_size : int, default 2
        The window's side.
    stride : int, optional
        Default: the kernel size.
    dout : ndarray, shape (OH, OW), optional
        An output gradient to send back.
    mode : {"max", "average"}, default "max"
        The pooling.

    Returns
    -------
    Picture
        The input with its windows coloured (framed when they overlap) and winners circled,
        the output, and with dout the gradient dx that numcnn's backward returns.
    """
    x = np.asarray(x, np.float64)
    k, s = kernel_size, stride or kernel_size
    layer = MaxPool2d(k, s) if mode == "max" else AvgPool2d(k, s)
    out = layer.forward(x[None, None])[0, 0]
    windows, (oh, ow) = _windows(x.shape, k, s)
    colours = pastel(len(windows))
    overlap = s < k
    fill = [[None] * x.shape[1] for _ in range(x.shape[0])]
    winners = np.zeros(x.shape, bool)
    for n, (top, left) in enumerate(windows):
        if not overlap:
            for r in range(top, top + k):
                for c in range(left, left + k):
                    fill[r][c] = colours[n]
        window = x[top:top + k, left:left + k]
        if mode == "max":
            r, c = np.unravel_index(np.argmax(window), window.shape)  # the first maximum, as numcnn picks
            winners[top + r, left + c] = True
    board = Board()
    board.grid(0, 0, x, colours=fill, bold=winners)
    board.caption(0, 0, x.shape[1], say("input"))
    for n, (top, left) in enumerate(windows):
        if overlap:
            board.frame(top, left, k, k, colours[n], lw=2)
    for r, c in zip(*np.nonzero(winners)):
        board.ring(r, c)
    left = x.shape[1] + 2
    top = (x.shape[0] - oh) / 2
    out_colours = [colours[i * ow:(i + 1) * ow] for i in range(oh)]  # output pixel = its window's colour
    board.grid(top, left, out, colours=out_colours, fmt="{:.3g}")
    board.caption(top, left, ow, say("output"))
    board.arrow((x.shape[0] / 2, x.shape[1] + 0.3), (x.shape[0] / 2, left - 0.3))
    if dout is not None:
        dout = np.asarray(dout, np.float64)
        dx = layer.backward(dout[None, None])[0, 0]
        left += ow + 2
        board.grid(top, left, dout, colours=out_colours, fmt="{:.3g}")
        board.caption(top, left, ow, say("dout"))
        left += ow + 2
        board.arrow((x.shape[0] / 2, left - 1.7), (x.shape[0] / 2, left - 0.3))
        source = np.full(x.shape, -1)
        for n, (wt, wl) in enumerate(windows):
            source[wt:wt + k, wl:wl + k][dx[wt:wt + k, wl:wl + k] != 0] = n
        dx_colours = [[None if n < 0 else colours[n] for n in row] for row in source]
        board.grid(0, left, dx, colours=dx_colours, fmt="{:.3g}", bold=dx != 0)
        board.caption(0, left, x.shape[1], say("dx: where the gradient goes"))
    name = "max pooling {k}×{k}, stride {s}" if mode == "max" else "average pooling {k}×{k}, stride {s}"
    board.title = say(name, k=k, s=s)
    return board


@drawing
def corner_windows(cases=((3, 1), (3, 2), (2, 2)), size=4):
    """The first (top-left) window on a padded size x size image, for several (kernel,
    padding) pairs: how much of it is image and how much padding."""
    board = Board()
    left = 0
    for k, p in cases:
        side = size + 2 * p
        colours = [[PAD if min(r, c) < p or max(r, c) >= p + size else None for c in range(side)]
                   for r in range(side)]
        board.grid(0, left, shape=(side, side), colours=colours)
        board.frame(0, left, k, k)
        real = max(0, k - p) ** 2
        board.caption(0, left, side, say("the first window with padding {p}, kernel {k}: {real} of {total} cells "
                                         "are image", p=p, k=k, real=real, total=k * k).replace(": ", ":\n"), size=9)
        left += side + 2
    return board


@drawing
def shift_tolerance(x, shift=1, kernel_size=2):
    """A map and the same map shifted ``shift`` pixels right (zeros come in on the left), each
    max pooled; the pooled outputs that the shift changed are framed.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        A small map (zeros are left blank).
    shift : int, default 1
        The shift, in pixels.
    kernel_size : int, default 2
        The pooling window's side.
    """
    x = np.asarray(x, np.float64)
    shifted = np.zeros_like(x)
    shifted[:, shift:] = x[:, :x.shape[1] - shift]
    pooled = [F.max_pool2d(a[None, None], kernel_size)[0, 0] for a in (x, shifted)]
    changed = ~np.isclose(pooled[0], pooled[1])
    lit = (pooled[0] != 0) | (pooled[1] != 0)  # outputs some peak reaches, before or after
    blank = lambda a: [[None if v == 0 else v for v in row] for row in a]  # noqa: E731
    board = Board()
    h, w = x.shape
    oh, ow = pooled[0].shape
    for row, (name, a, p) in enumerate(((say("input"), x, pooled[0]),
                                        (say("shifted {shift} pixel(s) right", shift=shift), shifted, pooled[1]))):
        top = row * (h + 2.5)
        board.grid(top, 0, blank(a), fmt="{:.2g}")
        for i in range(0, h, kernel_size):
            for j in range(0, w, kernel_size):
                board.frame(top + i, j, kernel_size, kernel_size, "0.6", lw=1, inset=0.02)
        board.caption(top, 0, w, name, size=9)
        pt = top + (h - oh) / 2
        board.arrow((top + h / 2, w + 0.3), (top + h / 2, w + 1.7))
        board.grid(pt, w + 2, blank(p), fmt="{:.2g}")
        board.caption(pt, w + 2, ow, say("max pooled"), size=9)
        if row == 1:
            for i, j in zip(*np.nonzero(changed)):
                board.frame(pt + i, w + 2 + j, 1, 1, CURRENT, lw=2.5)
    board.title = say("{same} of {total} non-zero outputs unchanged", same=int((lit & ~changed).sum()),
                      total=int(lit.sum()))
    return board
