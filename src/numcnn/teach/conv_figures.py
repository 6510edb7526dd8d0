"""Figures of the convolution itself: the sliding window, why a layer convolves rather than
connects everything, what a stack of layers sees, kernels on a real image, channels summed into
one output, the shapes of many filters, and a whole network's shapes.

Each function takes small arrays or shapes and returns a ``Picture`` (a notebook shows it)."""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .canvas import CURRENT, NEXT, PAD, Board, drawing, pastel
from .words import ENGLISH, say


def label(name: str) -> str:
    """A name the caller chose, translated when it is one of the figures' own words."""
    return say(name) if name in ENGLISH else name


def _conv_one(x, kernel, stride, padding) -> np.ndarray:
    """(H, W) convolved with (K, K), one channel, as float64."""
    x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    return F.conv2d(x[None, None], kernel[None, None], stride=stride, padding=padding)[0, 0]


def _padded_colours(shape, padding):
    rows, cols = shape
    return [[PAD if min(r, c) < padding or r >= rows - padding or c >= cols - padding else None
             for c in range(cols)] for r in range(rows)]


@drawing
def sliding_window(x, kernel, stride=1, padding=0, step=0):
    """The kernel on the padded input at one position, the next position, and the output.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        The input's numbers.
    kernel : ndarray, shape (K, K)
        The kernel.
    stride, padding : int
        As a convolution takes them.
    step : int, default 0
        Which window is drawn as the current one, counting row by row from 0.

    Returns
    -------
    Picture
        The padded input (padding shaded) with the current window (solid) and the next one
        (dashed), the kernel, and the output with the pixels those two windows make.
    """
    x, kernel = np.asarray(x), np.asarray(kernel)
    k = kernel.shape[0]
    padded = np.pad(x, padding)
    out = _conv_one(x, kernel, stride, padding)
    oh, ow = out.shape
    board = Board()
    board.grid(0, 0, padded, colours=_padded_colours(padded.shape, padding))
    board.text(-1.5, padded.shape[1] / 2, say("padded input") if padding else say("input"))
    windows = [divmod(s, ow) for s in (step, step + 1) if s < oh * ow]
    for (i, j), colour, dashed in zip(windows, (CURRENT, NEXT), (False, True)):
        board.frame(i * stride, j * stride, k, k, colour, dashed)
    if len(windows) == 2:  # the step between them, drawn beside the grid
        (i0, j0), (i1, j1) = windows
        text = say("stride {stride}", stride=stride)
        if i0 == i1:
            board.arrow((-0.3, j0 * stride), (-0.3, j1 * stride), text, NEXT)
        else:
            board.arrow((i0 * stride, -0.3), (i1 * stride, -0.3), "", NEXT)
            board.text((i0 + i1) * stride / 2, -0.6, text, size=9, ha="right", colour=NEXT)
    left = padded.shape[1] + 2
    top = (padded.shape[0] - k) / 2
    board.grid(top, left, kernel)
    board.caption(top, left, k, say("kernel"))
    left += k + 2
    top = (padded.shape[0] - oh) / 2
    board.grid(top, left, out)
    board.caption(top, left, ow, say("output"))
    for (i, j), colour, dashed in zip(windows, (CURRENT, NEXT), (False, True)):
        board.frame(top + i, left + j, 1, 1, colour, dashed, lw=2.5)
    board.text(top + oh + 0.9, left + ow / 2,
               say("OH = ({h} + 2·{p} − {k}) // {s} + 1 = {oh}", h=x.shape[0], p=padding, k=k, s=stride, oh=oh), size=9)
    board.title = say("padding {padding}, stride {stride}", padding=padding, stride=stride)
    return board


@drawing
def why_convolution(size=6, kernel_size=3, outputs=((1, 1), (3, 2))):
    """Which weight connects each input pixel to two output pixels, in a dense layer and in a
    convolution: locality (a small neighbourhood) and weight sharing (the same weights).

    Parameters
    ----------
    size : int, default 6
        The side of the square input (and of the dense layer's output).
    kernel_size : int, default 3
        The convolution's kernel side.
    outputs : sequence of tuple of int
        Two (row, col) output pixels; for the convolution, the windows' top-left corners.
    """
    n, k = size * size, kernel_size
    dense_colours = pastel(2 * n)
    tap_colours = pastel(k * k)
    board = Board()
    step = size + 3
    for column, ((r, c), name) in enumerate(zip(outputs, "AB")):
        left = column * step
        first = column * n
        values = [[first + i * size + j for j in range(size)] for i in range(size)]
        board.grid(0, left, values, colours=[[dense_colours[v] for v in row] for row in values], fontsize=7)
        board.caption(0, left, size, say("dense layer: output {which}", which=name))
        board.text(size + 0.6, left + size / 2, say("{n} weights, one per input pixel", n=n), size=8)
        top = step
        taps = [[(i - r) * k + (j - c) if 0 <= i - r < k and 0 <= j - c < k else None for j in range(size)]
                for i in range(size)]
        board.grid(top, left, taps, colours=[[None if t is None else tap_colours[t] for t in row] for row in taps])
        board.frame(top + r, left + c, k, k)
        board.caption(top, left, size, say("convolution: output {which}", which=name))
        board.text(top + size + 0.6, left + size / 2, say("the same {n} weights, on a {k}×{k} neighbourhood",
                                                          n=k * k, k=k), size=8)
    board.text(2 * step - 1.5, step - 1.5,
               say("colour = which weight connects the pixel to the output; white = not connected"), size=9)
    board.title = say("dense: {dense:,} weights for a {h}×{w} output;  convolution: {conv} weights",
                      dense=n * n, h=size, w=size, conv=k * k)
    return board


def receptive_counts(kernel_size: int, layers: int) -> np.ndarray:
    """How many paths lead from each input pixel to one output pixel through ``layers``
    stride-1 convolutions of kernel_size: (S, S), S = 1 + layers*(kernel_size - 1)."""
    counts = np.ones((1, 1, 1, 1))
    ones = np.ones((1, 1, kernel_size, kernel_size))
    for _ in range(layers):
        counts = F.conv_transpose2d(counts, ones)   # a convolution's input gradient: one step back
    return counts[0, 0]


@drawing
def receptive_field(kernel_size=3, layers=3):
    """What one output pixel sees after 1, 2, ... ``layers`` stride-1 convolutions: the input
    pixels it depends on, each numbered with its count of paths through the layers."""
    import matplotlib

    side = 1 + layers * (kernel_size - 1)
    board = Board()
    for d in range(1, layers + 1):
        counts = receptive_counts(kernel_size, d)
        grid = np.zeros((side, side))
        start = (side - counts.shape[0]) // 2
        grid[start:start + counts.shape[0], start:start + counts.shape[1]] = counts
        shade = matplotlib.colormaps["Blues"]
        colours = [[None if v == 0 else shade(0.15 + 0.6 * v / grid.max()) for v in row] for row in grid]
        values = [[None if v == 0 else int(v) for v in row] for row in grid]
        left = (d - 1) * (side + 2)
        board.grid(0, left, values, colours=colours, fontsize=7)
        board.frame(side // 2, left + side // 2, 1, 1)
        board.caption(0, left, side, say("after {n} layer(s) of {k}×{k}: {size}×{size}", n=d, k=kernel_size,
                                         size=counts.shape[0]), size=9)
    board.title = say("what one output pixel sees (number = paths through the layers)")
    return board


@drawing
def kernel_responses(image, kernels, height=8):
    """An image convolved with each of several kernels (padding keeps the size).

    Parameters
    ----------
    image : ndarray, shape (H, W), (1, H, W) or (1, 1, H, W)
        One gray image.
    kernels : dict of str to ndarray
        {name: (K, K) array}, drawn left to right; the response is coloured red for positive
        and blue for negative, white for zero.
    height : float, default 8
        The height of each image, in the picture's units.
    """
    image = np.asarray(image, np.float64).reshape(np.shape(image)[-2:])
    board = Board()
    top = max(np.shape(k)[0] for k in kernels.values()) + 2
    board.image(top, 0, image, height)
    board.caption(top, 0, height * image.shape[1] / image.shape[0], say("image"))
    left = height * image.shape[1] / image.shape[0] + 2
    for name, kernel in kernels.items():
        kernel = np.asarray(kernel, np.float64)
        response = _conv_one(image, kernel, 1, kernel.shape[0] // 2)
        width = height * response.shape[1] / response.shape[0]
        k_left = left + (width - kernel.shape[1]) / 2
        board.grid(0, k_left, kernel, fmt="{:.3g}", fontsize=8)
        board.caption(0, k_left, kernel.shape[1], say("{name} kernel", name=label(name)), size=9)
        limit = np.abs(response).max() or 1.0
        board.image(top, left, response, height, cmap="RdBu_r", vmin=-limit, vmax=limit)
        board.caption(top, left, width, say("response to {name}", name=label(name)), size=9)
        left += width + 2
    return board


@drawing
def channel_sum(x, weight, bias=0.0):
    """One filter on a multi-channel input.

    Channel c convolved with kernel c, and the C results added into one output channel, plus
    the bias. Shapes are written above each grid.

    Parameters
    ----------
    x : ndarray, shape (C, H, W)
        The input.
    weight : ndarray, shape (C, K, K)
        The filter.
    bias : float, default 0.0
        Added to the sum.
    """
    x, weight = np.asarray(x), np.asarray(weight)
    c_count, h, w = x.shape
    k = weight.shape[1]
    colours = pastel(max(c_count, 3))
    partials = [_conv_one(x[c], weight[c], 1, 0) for c in range(c_count)]
    oh, ow = partials[0].shape
    board = Board()
    rows = h + 2
    for c in range(c_count):
        top = c * rows
        tint = [[colours[c]] * w for _ in range(h)]
        board.grid(top, 0, x[c], colours=tint)
        board.caption(top, 0, w, f"{say('channel {c}', c=c)}\n{x[c].shape}", size=9)
        kt = top + (h - k) / 2
        board.grid(kt, w + 2, weight[c], colours=[[colours[c]] * k for _ in range(k)])
        board.caption(kt, w + 2, k, f"{say('kernel {c}', c=c)}\n{weight[c].shape}", size=9)
        board.text(top + h / 2, w + 1, "⊛", size=14)
        pt = top + (h - oh) / 2
        board.arrow((pt + oh / 2, w + k + 2.3), (pt + oh / 2, w + k + 3.7))
        board.grid(pt, w + k + 4, partials[c], colours=[[colours[c]] * ow for _ in range(oh)])
    total = sum(partials)
    middle = (c_count * rows - 2) / 2
    left = w + k + 4 + ow + 4
    for c in range(c_count):
        pt = c * rows + (h - oh) / 2 + oh / 2
        board.arrow((pt, w + k + 4 + ow + 0.3), (middle, left - 0.3))
    board.grid(middle - oh / 2, left, total)
    board.caption(middle - oh / 2, left, ow, f"{say('sum over channels')}\n{total.shape}", size=9)
    board.text(middle, left + ow + 2, f"+ {bias:g}", size=11)
    board.text(middle + 0.9, left + ow + 2, say("bias"), size=8)
    out_left = left + ow + 4
    board.grid(middle - oh / 2, out_left, total + bias)
    board.caption(middle - oh / 2, out_left, ow, f"{say('output (1 channel)')}\n{(total + bias).shape}", size=9)
    board.title = say("one filter: every channel convolved with its own kernel, then summed")
    return board


def _side(n: int) -> float:
    """How many cells a block side of n elements gets: grows with n, slowly, so that 1 and 224
    both fit on a page."""
    return 1.0 + 1.6 * math.log2(max(n, 1)) / 2


@drawing
def conv_blocks(in_shape, out_channels, kernel_size, stride=1, padding=0, groups=1):
    """The shapes of a convolution layer as 3-D blocks, as the textbook draws them:
    input (C, H, W) ⊛ FN filters (C/groups, K, K) → (FN, OH, OW), + bias (FN, 1, 1)."""
    c, h, w = in_shape
    oh = F.output_size(h, kernel_size, stride, padding, padding, 1)
    ow = F.output_size(w, kernel_size, stride, padding, padding, 1)
    colours = pastel(4)
    board = Board()
    height = _side(h)
    board.block(0, 0, height, _side(w), _side(c), colours[0], f"{say('input (C, H, W)')}\n{(c, h, w)}")
    left = _side(w) + _side(c) / 2 + 1.5
    board.text(height / 2, left - 0.7, "⊛", size=14)
    shown = min(out_channels, 3)
    kside = _side(kernel_size)
    for f in range(shown):
        board.block(f * (kside + 0.8), left, kside, kside, _side(c // groups), colours[1],
                    inside="" if f < shown - 1 or shown == out_channels else "…")
    label = say("filters (FN, C/g, FH, FW)" if groups > 1 else "filters (FN, C, FH, FW)")
    filters = f"{label}\n{(out_channels, c // groups, kernel_size, kernel_size)}"
    if groups > 1:
        filters += f"  {say('groups={g}', g=groups)}"
    board.text(shown * (kside + 0.8) + 0.4, left + kside / 2 + 0.5, filters, size=9)
    board.text(-1.2 - _side(c // groups) / 2, left + kside / 2, say("{fn} filters", fn=out_channels), size=9)
    left += kside + _side(c // groups) / 2 + 1.5
    board.arrow((height / 2, left - 0.8), (height / 2, left + 0.6))
    left += 1.5
    board.block(0, left, _side(oh), _side(ow), _side(out_channels), colours[2],
                f"{say('output (FN, OH, OW)')}\n{(out_channels, oh, ow)}")
    left += _side(ow) + _side(out_channels) / 2 + 1.2
    board.text(height / 2, left, "+", size=14)
    board.block(height / 2 - 0.5, left + 1, 1, 1, _side(out_channels), colours[3],
                f"{say('bias (FN, 1, 1)')}\n{(out_channels, 1, 1)}")
    return board


@drawing
def network(model):
    """A Sequential model as a row of blocks, one per layer, each with its output shape (the
    chapter's first picture: conv, ReLU, pooling, ..., affine)."""
    shape = tuple(model.input_shape)
    x = np.zeros((1, *shape), np.float32)
    stages = [(say("input"), shape)]
    with model.evaluating():
        for layer in model.layers:
            x = layer.forward(x)
            stages.append((type(layer).__name__, x.shape[1:]))
    kinds = list(dict.fromkeys(name for name, _ in stages))
    colours = pastel(len(kinds))
    board = Board()
    left = 0.0
    for i, (name, out) in enumerate(stages):
        depth = 0.6 * _side(out[0]) if len(out) == 3 else 0.4
        height = _side(out[1]) if len(out) == 3 else _side(out[0])
        width = _side(out[2]) if len(out) == 3 else 0.6
        shape = "(" + ", ".join(str(n) for n in out) + ")"
        board.block(4 - height / 2, left, height, width, depth, colours[kinds.index(name)], f"{name}\n{shape}")
        left += width + depth / 2 + 2.6
        if i + 1 < len(stages):
            board.arrow((4, left - 2.2), (4, left - 0.8))
    board.title = say("a network: each layer's output shape")
    return board
