"""How one output pixel of a layer came about: the numbers the page's detail shows.

Each function takes a layer, its input for this one picture (1, C, H, W) on the host, and the
pixel, and gives every step of the arithmetic with its numbers: a conv's window, weights, products
and sums; a pooling window's winner or average; batch norm's (x - mean) / sqrt(var + eps) *
gamma + beta with the running statistics; an activation's formula; a residual block's two
branches and their sum. The page checks each result against the layer's own output there.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy
from ..functional import im2col
from ..functional.adaptive import adaptive_bounds, output_pair
from ..functional.pool import pool_params, pool_window
from ..functional.window import Window, make_window, pair
from ..layers import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm, Conv2d, ConvTranspose2d, Dropout,
                      GlobalAvgPool2d, LeakyReLU, Linear, MaxPool2d, Normalize, ReLU, Sigmoid, Tanh)
from ..model import Residual, Sequential
from .blocks import Node, flatten, input_of

__all__ = ["describe_layer", "detail_kind", "window_taps", "conv_detail", "conv_transpose_detail", "pool_detail",
           "adaptive_detail", "batch_norm_detail", "normalize_detail", "activation_detail", "residual_detail"]

ACTIVATIONS = {ReLU: "max(0, x)", LeakyReLU: "x if x > 0, else slope * x", Sigmoid: "1 / (1 + exp(-x))",
               Tanh: "tanh(x)"}


def describe_layer(layer) -> str:
    """One line that says what a layer does, e.g. "Conv2d 30@5x5, stride 1, padding 0"."""
    name = type(layer).__name__
    if isinstance(layer, Conv2d):
        kh, kw = layer.kernel_size
        text = f"{name} {layer.out_channels}@{kh}x{kw}, stride {layer.stride}, padding {layer.padding}"
        if layer.dilation not in (1, (1, 1), [1, 1]):
            text += f", dilation {layer.dilation}"
        return text + (f", groups {layer.groups}" if layer.groups > 1 else "")
    if isinstance(layer, (MaxPool2d, AvgPool2d)):
        kernel, stride, pads, dilation = pool_params(layer.kernel_size, layer.stride, layer.padding,
                                                     dilation=getattr(layer, "dilation", 1))
        shown = pads if pads == "same" or len(set(pads)) > 1 else pads[0]
        text = f"{name} {kernel[0]}x{kernel[1]}, stride {stride[0]}, padding {shown}"
        text += f", dilation {dilation[0]}" if dilation != (1, 1) else ""
        return text + (", ceil_mode" if layer.ceil_mode else "")
    if isinstance(layer, BatchNorm):
        return f"{name} {layer.num_features}, eps {layer.eps:g}"
    if isinstance(layer, LeakyReLU):
        return f"{name}, slope {layer.negative_slope:g}"
    if isinstance(layer, Dropout):
        return f"{name} (the identity at inference)"
    if isinstance(layer, Linear):
        return f"{name} {layer.in_features} -> {layer.out_features}"
    if isinstance(layer, Residual):
        inside = len(layer.layers)
        skip = "identity shortcut" if layer.shortcut is None else f"shortcut {type(layer.shortcut).__name__}"
        return f"{name} x + f(x): {inside} layer{'s' * (inside != 1)} inside, {skip}"
    if type(layer) is Sequential:
        return f"{name}: {len(layer.layers)} layer{'s' * (len(layer.layers) != 1)} inside"
    return name


def detail_kind(layer) -> str | None:
    """Which detail explains a pixel of layer; None for a layer without one (Flatten, Linear, ...)."""
    if isinstance(layer, Conv2d):
        return "conv"
    if isinstance(layer, ConvTranspose2d):
        return "conv_transpose"
    if isinstance(layer, (MaxPool2d, AvgPool2d, GlobalAvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d)):
        return "pool"
    if isinstance(layer, BatchNorm):
        return "batch_norm"
    if isinstance(layer, Normalize):
        return "normalize"
    if type(layer) in ACTIVATIONS:
        return "activation"
    if type(layer) is Residual:
        return "residual"
    return None


def window_taps(win: Window, y: int, x: int, height: int, width: int) -> dict:
    """Where the window of output pixel (y, x) reads its input, in the unpadded input's coordinates.

    rows (KH,), cols (KW,): tap (i, j) reads input row rows[i], column cols[j]; a coordinate
    outside [0, height) x [0, width) is padding.
    """
    top, left = y * win.sh - win.pads[0], x * win.sw - win.pads[2]
    rows = [top + i * win.dh for i in range(win.kh)]
    cols = [left + j * win.dw for j in range(win.kw)]
    padding = [[not (0 <= r < height and 0 <= c < width) for c in cols] for r in rows]
    return {"rows": rows, "cols": cols, "padding": padding,
            "stride": [win.sh, win.sw], "dilation": [win.dh, win.dw], "pads": list(win.pads)}


def conv_detail(layer: Conv2d, layer_input: np.ndarray, channel: int, y: int, x: int) -> dict:
    """The multiply-adds behind conv output (channel, y, x). layer_input: (1, C, H, W)."""
    _, c, height, width = layer_input.shape
    kh, kw = layer.kernel_size
    win = make_window(layer_input.shape, (kh, kw), layer.stride, layer.padding, layer.dilation, "Conv2d")
    # The textbook's im2col: one row per output pixel, columns ordered (channel, kh, kw).
    col = im2col(layer_input, (kh, kw), layer.stride, layer.padding, layer.dilation)
    row_index = y * win.ow + x
    row = col[row_index]
    per_group = c // layer.groups
    group = channel // (layer.out_channels // layer.groups)
    channels = range(group * per_group, (group + 1) * per_group)
    patch = row.reshape(c, kh, kw)[channels.start:channels.stop].astype(np.float64)
    weight = to_numpy(layer.params["weight"][channel]).astype(np.float64)  # (C // groups, KH, KW)
    products = patch * weight
    bias = float(layer.params["bias"][channel]) if "bias" in layer.params else 0.0
    per_channel = products.sum(axis=(1, 2))
    columns = slice(channels.start * kh * kw, channels.stop * kh * kw)
    return {
        "kind": "conv",
        "window": window_taps(win, y, x, height, width),
        "input_channels": list(channels),
        "patch": patch.tolist(),
        "weights": weight.tolist(),
        "products": products.tolist(),
        "channel_sums": per_channel.tolist(),
        "bias": bias,
        "sum": float(per_channel.sum() + bias),
        "im2col": {"shape": list(col.shape), "row": row_index, "values": row.astype(np.float64).tolist(),
                   "columns": [columns.start, columns.stop],
                   "dot": float(row[columns].astype(np.float64) @ weight.ravel() + bias)},
    }


def pool_detail(layer, layer_input: np.ndarray, channel: int, y: int, x: int) -> dict:
    """The window behind pooling output (channel, y, x): its values and winner or average."""
    _, _, height, width = layer_input.shape
    plane = layer_input[0, channel].astype(np.float64)
    if isinstance(layer, GlobalAvgPool2d):
        win = Window(height, width, 1, 1, 1, 1, (0, 0, 0, 0), 1, 1)
        count_include_pad, mode = True, "avg"
    else:
        win = pool_window(layer_input.shape, layer.kernel_size, layer.stride, layer.padding, type(layer).__name__,
                          getattr(layer, "dilation", 1), layer.ceil_mode)
        mode = "max" if isinstance(layer, MaxPool2d) else "avg"
        count_include_pad = getattr(layer, "count_include_pad", True)
    taps = window_taps(win, y, x, height, width)
    fill = -np.inf if mode == "max" else 0.0
    values = [[float(plane[r, c]) if not pad else fill for c, pad in zip(taps["cols"], pads)]
              for r, pads in zip(taps["rows"], taps["padding"])]
    flat = np.array(values).ravel()
    answer = {"kind": "pool", "mode": mode, "window": taps,
              # JSON has no infinity: padding of a max pool is shown as null.
              "values": [[v if np.isfinite(v) else None for v in row] for row in values]}
    if mode == "max":
        winner = int(np.argmax(flat))  # the first maximum in row-major tap order, as the kernel picks
        answer.update(winner=[winner // win.kw, winner % win.kw], result=float(flat[winner]))
    else:
        real = int(np.size(flat) - np.sum(np.array(taps["padding"])))
        # The padding counts, but not what ceil_mode adds past it (PyTorch's rule); an override wins.
        inside = sum(-win.pads[0] <= r < height + win.pads[0] for r in taps["rows"]) * \
            sum(-win.pads[2] <= c < width + win.pads[2] for c in taps["cols"])
        divisor = getattr(layer, "divisor_override", None) or (inside if count_include_pad else real)
        answer.update(sum=float(flat.sum()), divisor=int(divisor), result=float(flat.sum() / divisor))
    return answer


def adaptive_detail(layer, layer_input: np.ndarray, channel: int, y: int, x: int) -> dict:
    """The adaptive window behind output (channel, y, x): rows [floor(y*H/OH), ceil((y+1)*H/OH)),
    likewise the columns (PyTorch's rule), and its winner or mean."""
    _, _, height, width = layer_input.shape
    out_h, out_w = output_pair(layer.output_size, layer_input.shape)
    starts, ends = adaptive_bounds(height, out_h)
    r0, r1 = int(starts[y]), int(ends[y])
    starts, ends = adaptive_bounds(width, out_w)
    c0, c1 = int(starts[x]), int(ends[x])
    rows, cols = list(range(r0, r1)), list(range(c0, c1))
    values = layer_input[0, channel, r0:r1, c0:c1].astype(np.float64)
    taps = {"rows": rows, "cols": cols, "padding": [[False] * len(cols) for _ in rows],
            "stride": [1, 1], "dilation": [1, 1], "pads": [0, 0, 0, 0]}
    answer = {"kind": "pool", "window": taps, "values": values.tolist()}
    if isinstance(layer, AdaptiveMaxPool2d):
        winner = int(np.argmax(values))  # the first maximum in row-major order, as the kernel keeps
        return {**answer, "mode": "max", "winner": [winner // len(cols), winner % len(cols)],
                "result": float(values.ravel()[winner])}
    return {**answer, "mode": "avg", "sum": float(values.sum()), "divisor": int(values.size),
            "result": float(values.sum() / values.size)}


def conv_transpose_detail(layer, layer_input: np.ndarray, channel: int, y: int, x: int) -> dict:
    """The input pixels that spread into transposed-convolution output (channel, y, x): input
    (h, w) reaches it through tap (i, j) where h*SH - PH + i*DH == y (likewise w), each times
    that tap's weight; the products summed, plus the bias."""
    _, c_in, height, width = layer_input.shape
    (sh, sw), (ph, pw), (dh, dw) = (pair(layer.stride, "stride", 1), pair(layer.padding, "padding"),
                                    pair(layer.dilation, "dilation", 1))
    kh, kw = layer.kernel_size
    per_group = layer.out_channels // layer.groups
    group = channel // per_group
    weight = to_numpy(layer.params["weight"]).astype(np.float64)
    rows = [(h, i) for i in range(kh) for h in range(height) if h * sh - ph + i * dh == y]
    cols = [(w, j) for j in range(kw) for w in range(width) if w * sw - pw + j * dw == x]
    sources = []
    for c in range(group * (c_in // layer.groups), (group + 1) * (c_in // layer.groups)):
        for h, i in rows:
            for w, j in cols:
                value, tap = float(layer_input[0, c, h, w]), float(weight[c, channel % per_group, i, j])
                sources.append({"channel": c, "row": h, "col": w, "tap": [i, j], "x": value, "weight": tap,
                                "product": value * tap})
    bias = float(to_numpy(layer.params["bias"])[channel]) if "bias" in layer.params else 0.0
    total = sum(s["product"] for s in sources)
    window = {"rows": sorted({h for h, _ in rows}), "cols": sorted({w for w, _ in cols}), "stride": [1, 1],
              "dilation": [1, 1], "pads": [0, 0, 0, 0]}
    window["padding"] = [[False] * len(window["cols"]) for _ in window["rows"]]
    return {"kind": "conv_transpose", "sources": sources, "bias": bias, "sum": total + bias, "window": window,
            "input_channels": [group * (c_in // layer.groups)]}


def _at(array, where: tuple[int, ...]) -> float:
    """array (1, ...) at index where of its one sample, as a Python float."""
    return float(array[(0, *where)])


def batch_norm_detail(layer: BatchNorm, layer_input: np.ndarray, where: tuple[int, ...]) -> dict:
    """(x - running_mean) / sqrt(running_var + eps) * gamma + beta at where (channel first): at
    inference batch norm uses the running statistics gathered in training, not the batch's."""
    channel = where[0]
    x = _at(layer_input, where)
    mean = float(to_numpy(layer.buffers["running_mean"])[channel])
    var = float(to_numpy(layer.buffers["running_var"])[channel])
    gamma = float(to_numpy(layer.params["weight"])[channel])
    beta = float(to_numpy(layer.params["bias"])[channel])
    std = math.sqrt(var + layer.eps)
    normalized = (x - mean) / std
    return {"kind": "batch_norm", "input": x, "running_mean": mean, "running_var": var, "eps": layer.eps,
            "std": std, "normalized": normalized, "gamma": gamma, "beta": beta,
            "result": normalized * gamma + beta, "momentum": layer.momentum,
            "batches_tracked": int(to_numpy(layer.buffers["num_batches_tracked"]))}


def normalize_detail(layer: Normalize, layer_input: np.ndarray, where: tuple[int, ...]) -> dict:
    """(x - mean) / std at where, with the channel's mean and std stored in the model."""
    x = _at(layer_input, where)
    mean = float(to_numpy(layer.buffers["mean"])[where[0]])
    std = float(to_numpy(layer.buffers["std"])[where[0]])
    return {"kind": "normalize", "input": x, "mean": mean, "std": std, "result": (x - mean) / std}


def activation_detail(layer, layer_input: np.ndarray, where: tuple[int, ...]) -> dict:
    """The activation's formula applied to the layer's input at where ("input" in the answer:
    "x" is the pixel's column)."""
    x = _at(layer_input, where)
    if isinstance(layer, LeakyReLU):
        result, slope = (x if x > 0 else layer.negative_slope * x), layer.negative_slope
    else:
        slope = None
        result = {ReLU: lambda v: max(v, 0.0), Sigmoid: lambda v: 0.5 * (1 + math.tanh(v / 2)),  # no overflow
                  Tanh: math.tanh}[type(layer)](x)
    return {"kind": "activation", "function": type(layer).__name__, "formula": ACTIVATIONS[type(layer)],
            "input": x, "slope": slope, "result": result}


def residual_detail(node: Node, outputs: dict, image: np.ndarray, where: tuple[int, ...]) -> dict:
    """A residual block's output at where: the body's output there plus the skip path's (the
    shortcut's output, or the block's input itself), and, when the shortcut has a conv of the
    block's output shape, that conv's own detail at the same pixel.

    outputs: every layer's output by path, each (1, ...); image: the model's input (1, C, H, W).
    """
    block_input = input_of(node, outputs, image)
    body, skip = (node.body[-1] if node.body else None), node.shortcut
    body_value = _at(outputs[body.path] if body else block_input, where)
    skip_value = _at(outputs[skip.path] if skip else block_input, where)
    answer = {"kind": "residual", "body": {"path": body.path if body else None, "value": body_value},
              "skip": {"path": skip.path if skip else node.input_path, "identity": skip is None, "value": skip_value},
              "sum": body_value + skip_value}
    shape = outputs[node.path].shape
    convs = [n for n in flatten([skip] if skip else [])
             if isinstance(n.layer, Conv2d) and outputs[n.path].shape == shape]
    if convs and len(where) == 3:
        conv, conv_input = convs[-1], input_of(convs[-1], outputs, image)
        answer["shortcut_conv"] = {"path": conv.path, "description": describe_layer(conv.layer),
                                   "channel": where[0], "y": where[1], "x": where[2],
                                   "value": _at(outputs[conv.path], where), "input_shape": list(conv_input.shape[1:]),
                                   **conv_detail(conv.layer, conv_input, *where)}
    return answer
