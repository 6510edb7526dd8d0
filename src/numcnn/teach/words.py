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
    "input (C, H, W)", "filters (FN, C, FH, FW)", "filters (FN, C/g, FH, FW)", "output (FN, OH, OW)",
    "bias (FN, 1, 1)",
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
    "exercise {n} ({name})", "{exercise}: correct", "{exercise}: not written yet (replace `raise NotImplementedError` or `...` "
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
    """matplotlib settings for the fonts in use (nothing for English): those of them this
    machine has, then DejaVu Sans. A font it lacks is left out rather than named, since
    matplotlib would warn about it at every label."""
    if not _fonts:
        return {}
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return {"font.family": [*(name for name in _fonts if name in installed), "DejaVu Sans"]}


# The Chinese edition's words (docs/zh/), in the terms of the chapter's Chinese translation and
# of the glossary (docs/zh/glossary.md).
CHINESE = {
    "input": "输入", "kernel": "卷积核", "output": "输出", "padding": "填充", "window": "窗口",
    "next window": "下一个窗口", "padded input": "填充后的输入",
    "stride {stride}": "步幅 {stride}", "padding {padding}, stride {stride}": "填充 {padding}，步幅 {stride}",
    "OH = ({h} + 2·{p} − {k}) // {s} + 1 = {oh}": "OH = ({h} + 2·{p} − {k}) // {s} + 1 = {oh}",
    "dense layer: output {which}": "全连接层：输出 {which}", "convolution: output {which}": "卷积：输出 {which}",
    "{n} weights, one per input pixel": "{n} 个权重，每个输入像素一个",
    "the same {n} weights, on a {k}×{k} neighbourhood": "同样的 {n} 个权重，只看 {k}×{k} 的邻域",
    "dense: {dense:,} weights for a {h}×{w} output;  convolution: {conv} weights":
        "全连接：输出 {h}×{w} 需要 {dense:,} 个权重；卷积：{conv} 个权重",
    "colour = which weight connects the pixel to the output; white = not connected":
        "颜色 = 连接该像素与输出的是哪个权重；白色 = 没有连接",
    "after {n} layer(s) of {k}×{k}: {size}×{size}": "经过 {n} 层 {k}×{k} 卷积：{size}×{size}",
    "what one output pixel sees (number = paths through the layers)": "一个输出像素能看到的区域（数字 = 经过各层的路径数）",
    "image": "图像", "{name} kernel": "{name}卷积核", "response to {name}": "对{name}的响应",
    "vertical edges": "竖直边缘", "horizontal edges": "水平边缘",
    "channel {c}": "通道 {c}", "kernel {c}": "卷积核 {c}", "sum over channels": "各通道相加", "bias": "偏置",
    "output (1 channel)": "输出（1 个通道）",
    "one filter: every channel convolved with its own kernel, then summed": "一个滤波器：每个通道与自己的卷积核做卷积，再相加",
    "input (C, H, W)": "输入 (C, H, W)", "filters (FN, C, FH, FW)": "滤波器 (FN, C, FH, FW)",
    "filters (FN, C/g, FH, FW)": "滤波器 (FN, C/g, FH, FW)",
    "output (FN, OH, OW)": "输出 (FN, OH, OW)", "bias (FN, 1, 1)": "偏置 (FN, 1, 1)",
    "{fn} filters": "{fn} 个滤波器", "groups={g}": "分组 groups={g}",
    "max pooling {k}×{k}, stride {s}": "最大池化 {k}×{k}，步幅 {s}",
    "average pooling {k}×{k}, stride {s}": "平均池化 {k}×{k}，步幅 {s}",
    "dout": "dout", "dx: where the gradient goes": "dx：梯度流向哪里", "winner": "最大值",
    "the first window with padding {p}, kernel {k}: {real} of {total} cells are image":
        "填充 {p}、窗口 {k} 时的第一个窗口：{total} 格中有 {real} 格是图像",
    "shifted {shift} pixel(s) right": "向右平移 {shift} 个像素", "max pooled": "最大池化之后",
    "{same} of {total} non-zero outputs unchanged": "{total} 个非零输出中有 {same} 个不变",
    "im2col: one row per window, one column per kernel tap": "im2col：每个窗口一行，每个卷积核位置一列",
    "windows": "窗口", "taps (c, i, j)": "卷积核位置 (c, i, j)",
    "tap (i, j) = ({i}, {j}) of every window: one strided slice": "所有窗口的位置 (i, j) = ({i}, {j})：一次带步幅的切片",
    "img[{i}:{i}+{s}·{oh}:{s}, {j}:{j}+{s}·{ow}:{s}]": "img[{i}:{i}+{s}·{oh}:{s}, {j}:{j}+{s}·{ow}:{s}]",
    "column ({i}, {j}) of col, as an OH×OW grid": "col 的第 ({i}, {j}) 列，排成 OH×OW",
    "col": "col", "W reshaped, transposed": "W 变形并转置", "out": "out", "reshape, transpose": "变形、转置",
    "convolution as one matrix product (GEMM)": "卷积就是一次矩阵乘法（GEMM）",
    "col2im(ones): how many windows read each pixel": "col2im(全 1)：每个像素被多少个窗口读到", "count": "次数",
    "kernel flipped 180°": "旋转 180° 的卷积核", "dout padded by K − 1 = {p}": "dout 四周填充 K − 1 = {p}",
    "dx = full convolution with the flipped kernel": "dx = 与翻转卷积核的完全卷积",
    "filter {f}": "滤波器 {f}",
    "the first layer of the trained network on one test image ({label})": "训练好的网络第一层在一张测试图像（{label}）上的输出",
    "a network: each layer's output shape": "一个网络：每一层输出的形状",
    "exercise {n} ({name})": "练习 {n}（{name}）", "{exercise}: correct": "{exercise}：正确",
    "{exercise}: not written yet (replace `raise NotImplementedError` or `...` "
    "with your answer, run that cell, then this one)":
        "{exercise}：还没有写（把 `raise NotImplementedError` 或 `...` 换成你的答案，先运行那个单元格，再运行这个）",
    "{exercise}: not finished: {where} raises NotImplementedError": "{exercise}：还没写完：{where} 抛出 NotImplementedError",
    "{exercise}: wrong: {reason}": "{exercise}：不对：{reason}",
    "{exercise}: this exercise asks you to do without {what}, and your answer calls {called}":
        "{exercise}：这道练习要求不使用{what}，而你的答案调用了 {called}",
    "numcnn's output_size": "numcnn 的 output_size", "numcnn's convolution": "numcnn 的卷积",
    "numcnn's max pooling": "numcnn 的最大池化", "numcnn's im2col": "numcnn 的 im2col",
    "numcnn's col2im": "numcnn 的 col2im", "nc.Conv2d": "nc.Conv2d", "numcnn's Sequential": "numcnn 的 Sequential",
}
# The fonts that draw CJK glyphs, tried in order; a missing one falls back to DejaVu Sans.
CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "SimHei"]
