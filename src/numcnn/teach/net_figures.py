"""Figures of a trained network: its first layer's filters next to the feature maps they make
of one image, after the activation and after pooling."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..data.loader import as_float_images
from ..viz import first_conv
from .canvas import Board, drawing
from .conv_figures import label
from .words import say


@drawing
def filters_and_maps(model, image, count=8, name="", stages=3):
    """The first convolution's filters, each above what it makes of ``image``.

    Parameters
    ----------
    model : Sequential
        A model whose first layers convolve (e.g. ``numcnn.zoo.pretrained("simple-convnet")``).
    image : ndarray, shape (C, H, W) or (1, C, H, W)
        Floats in [0, 1] or uint8 pixels.
    count : int, default 8
        How many filters (columns).
    name : str, default ""
        What the image shows, for the title.
    stages : int, default 3
        How many layers' 4-D outputs to show under the filters (conv, activation, pooling).

    Returns
    -------
    Picture
        Row 1 the filters (red positive, blue negative weights), then one row per layer
        output (bright = large), each map scaled to its own range.
    """
    x = as_float_images(np.asarray(image)).astype(np.float32)
    x = x[None] if x.ndim == 3 else x
    weight = to_numpy(first_conv(model).params["weight"]).astype(np.float64)[:count, 0]
    rows = []
    with model.evaluating():
        out = x
        for layer in model.layers:  # one layer at a time: every intermediate map is kept
            out = layer.forward(out)
            if out.ndim != 4 or len(rows) == stages:
                break
            rows.append((type(layer).__name__, to_numpy(out[0, :count]).astype(np.float64)))
    board = Board()
    board.image(3.5, 0, x[0, 0], 4)
    board.caption(3.5, 0, 4, say("image"), size=9)
    for f in range(len(weight)):
        left = 6 + f * 4
        limit = np.abs(weight[f]).max() or 1.0
        board.image(0, left, weight[f], 2.5, cmap="RdBu_r", vmin=-limit, vmax=limit)
        board.caption(0, left, 2.5, say("filter {f}", f=f), size=8)
    for r, (kind, maps) in enumerate(rows):
        top = 3.5 + r * 4.2
        board.text(top + 1.75, 5.6, kind, size=8, ha="right")
        for f, m in enumerate(maps):
            board.image(top, 6 + f * 4, m, 3.5, cmap="viridis", vmin=m.min(), vmax=max(m.max(), m.min() + 1e-12))
    board.title = say("the first layer of the trained network on one test image ({label})", label=label(name))
    return board
