"""Every word the teaching figures and checks print, in one table, so that a translation of the
notebooks swaps one dict and keeps every code cell as it is.

The keys are the English texts themselves (with ``{fields}`` filled in when used). A translation
maps some or all of them to its own texts, and may name the fonts its script needs::

    from numcnn import teach
    teach.use_words({"input": "输入", "kernel": "卷积核"}, fonts=["Noto Sans CJK SC"])

A key missing from the translation stays English; a key that is not in ``ENGLISH`` is refused,
so a typo cannot hide a label.
"""

from __future__ import annotations

from ..errors import ConfigError

ENGLISH = {text: text for text in (
    # figures: the sliding window
    "input", "kernel", "output", "padding", "window", "next window", "padded input",
    "stride {stride}", "padding {padding}, stride {stride}",
    "OH = ({h} + 2·{p} − {k}) // {s} + 1 = {oh}",
    # why convolution
    "dense layer: output {which}", "convolution: output {which}",
    "{n} weights, one per input pixel", "the same {n} weights, on a {k}×{k} neighbourhood",
    "dense: {dense:,} weights for a {h}×{w} output;  convolution: {conv} weights",
    "colour = which weight connects the pixel to the output; white = not connected",
    # receptive field
    "after {n} layer(s) of {k}×{k}: {size}×{size}",
    "what one output pixel sees (number = paths through the layers)",
    # kernels on an image
    "image", "{name} kernel", "response to {name}",
    "vertical edges", "horizontal edges",
    # channels and filters
    "channel {c}", "kernel {c}", "sum over channels", "bias", "output (1 channel)",
    "one filter: every channel convolved with its own kernel, then summed",
    "input (C, H, W)", "filters (FN, C, FH, FW)", "output (FN, OH, OW)", "bias (FN, 1, 1)",
    "{fn} filters", "groups={g}",
    # pooling
    "max pooling {k}×{k}, stride {s}", "average pooling {k}×{k}, stride {s}",
    "dout", "dx: where the gradient goes", "winner",
    "the first window with padding {p}, kernel {k}: {real} of {total} cells are image",
    "shifted {shift} pixel(s) right", "max pooled", "{same} of {total} non-zero outputs unchanged",
    # im2col
    "im2col: one row per window, one column per kernel tap",
    "windows", "taps (c, i, j)",
    "tap (i, j) = ({i}, {j}) of every window: one strided slice",
    "img[{i}:{i}+{s}·{oh}:{s}, {j}:{j}+{s}·{ow}:{s}]", "column ({i}, {j}) of col, as an OH×OW grid",
    "col", "W reshaped, transposed", "out", "reshape, transpose",
    "convolution as one matrix product (GEMM)",
    "col2im(ones): how many windows read each pixel", "count",
    # backward
    "kernel flipped 180°", "dout padded by K − 1 = {p}", "dx = full convolution with the flipped kernel",
    # a trained network
    "filter {f}",
    "the first layer of the trained network on one test image ({label})",
    "a network: each layer's output shape",
    # checks
    "{exercise}: correct", "{exercise}: not written yet (replace `raise NotImplementedError` or `...` "
    "with your answer, run that cell, then this one)",
    "{exercise}: not finished: {where} raises NotImplementedError",
    "{exercise}: wrong: {reason}",
    "{exercise}: this exercise asks you to do without {what}, and your answer calls {called}",
    "numcnn's output_size", "numcnn's convolution", "numcnn's max pooling", "numcnn's im2col",
    "numcnn's col2im", "nc.Conv2d", "numcnn's Sequential",
)}

_in_use: dict[str, str] = {}
_fonts: list[str] = []


def use_words(table: dict | None = None, fonts=None) -> None:
    """Draw and print in another language: ``table`` maps English texts (keys of ENGLISH) to
    their translations; None goes back to English. ``fonts``: font families to try first."""
    unknown = sorted(set(table or {}) - set(ENGLISH))
    if unknown:
        raise ConfigError(f"use_words: not texts the figures use: {unknown[:3]}")
    _in_use.clear()
    _in_use.update(table or {})
    _fonts[:] = list(fonts or [])


def say(text: str, **fields) -> str:
    """``text`` in the words in use, with its fields filled in."""
    if text not in ENGLISH:
        raise ConfigError(f"{text!r} is not in numcnn.teach.words.ENGLISH: add it there")
    return _in_use.get(text, text).format(**fields)


def font_settings() -> dict:
    """matplotlib settings for the fonts in use (nothing for English)."""
    return {"font.family": [*_fonts, "DejaVu Sans"]} if _fonts else {}
