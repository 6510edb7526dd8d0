"""What the page shows, computed by numcnn itself: no HTTP here, only arrays and numbers.

An ``Explainer`` wraps one model. It turns uploaded image bytes into the model's input the way
``numcnn predict`` does, runs the model layer by layer, and answers three questions:

* ``predict``: the softmax of the logits, every class;
* ``explain``: every top-level layer's output, the logits and the saliency (the gradient of
  the top class's logit with respect to the input, from the model's own ``backward``);
* ``detail``: how one output pixel of a conv or pooling layer came about: the window on the
  layer's input with padding and stride, the kernel weights, the products summed per input
  channel plus the bias, and the im2col row the GEMM used; or the pooling window's winner
  or average.

Layers keep caches during ``forward``, so one model must not run two requests at once: every
use of the model holds ``self.lock``. Decoding an image needs no lock.
"""

from __future__ import annotations

import io
import threading

import numpy as np

from ..backend import to_device, to_numpy
from ..data import model_labels, read_image
from ..data.images import require_pillow
from ..errors import ConfigError, DataError
from ..functional import im2col
from ..functional.activation import softmax
from ..functional.adaptive import adaptive_bounds, output_pair
from ..functional.pool import pool_params, pool_window
from ..functional.window import Window, make_window, pair
from ..layers import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, Conv2d, ConvTranspose2d, GlobalAvgPool2d,
                      MaxPool2d, Normalize)
from ..model import Sequential, read_model, to_config
from ..inference import predict_proba
from .examples import as_png, from_dataset


class ImageTooLarge(DataError):
    """An uploaded picture declares more pixels than Pillow's decompression-bomb limit."""


MAX_PIXELS = 50_000_000  # per uploaded picture: a 48-megapixel phone photo, not a poster scan


class _Upload(io.BytesIO):
    """Request bytes that read_image can open; named in its error messages."""

    def __str__(self) -> str:
        return "the uploaded image"


def check_image_size(body: bytes) -> tuple[int, int]:
    """(width, height) from the image's header, refusing a decompression bomb before decoding.

    Pillow raises DecompressionBombError above twice ``Image.MAX_IMAGE_PIXELS`` and only warns
    between one and two times it; both are refused here (ImageTooLarge), and so is anything above
    MAX_PIXELS (a 48-megapixel photo passes; each decode runs in its own worker thread, so the
    cap bounds the memory many requests at once can take). A body that is not an image at all
    is a DataError.
    """
    Image = require_pillow()
    from PIL import UnidentifiedImageError

    if not body:
        raise DataError("the request body is empty; send the image file's bytes")
    limit = min(Image.MAX_IMAGE_PIXELS or MAX_PIXELS, MAX_PIXELS)
    try:
        with Image.open(io.BytesIO(body)) as image:  # reads the header only
            width, height = image.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image is too large to decode: {exc}") from None
    except UnidentifiedImageError:
        raise DataError("the request body is not an image Pillow can read (PNG, JPEG, GIF, BMP, TIFF, "
                        "WebP, ...)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"the uploaded image cannot be read: {exc}") from None
    if width * height > limit:
        raise ImageTooLarge(f"the image is too large to decode: {width}x{height} = {width * height:,} pixels, "
                            f"more than the limit of {limit:,}")
    return width, height


def encode(array: np.ndarray) -> dict:
    """An array as {"shape", "dtype": "float32", "data": base64 of little-endian float32, "min", "max"}.

    Four bytes a value (and a third more for base64), against some twenty for JSON numbers;
    the page decodes it straight into a Float32Array.
    """
    import base64

    values = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(values.shape), "dtype": "float32",
            "data": base64.b64encode(values.tobytes()).decode("ascii"),
            "min": float(values.min()) if values.size else 0.0,
            "max": float(values.max()) if values.size else 0.0}


def _describe(layer) -> str:
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
    return name


def _detail_kind(layer) -> str | None:
    if isinstance(layer, Conv2d):
        return "conv"
    if isinstance(layer, ConvTranspose2d):
        return "conv_transpose"
    if isinstance(layer, (MaxPool2d, AvgPool2d, GlobalAvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d)):
        return "pool"
    return None


def _window_taps(win: Window, y: int, x: int, height: int, width: int) -> dict:
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


class Explainer:
    """One model and everything the page asks of it.

    Parameters
    ----------
    model
        a Sequential whose ``input_shape`` is (C, H, W) with C 1 or 3
    training
        the model's training record (class names, background rule), as read_model gives
    """

    def __init__(self, model, training: dict | None = None, source: str = "", examples=None):
        shape = getattr(model, "input_shape", None)
        if not shape or len(shape) != 3 or shape[0] not in (1, 3):
            raise ConfigError(f"{source or 'the model'}: expected a model of images, with an input shape "
                              f"(C, H, W) and C 1 or 3; got input shape {shape}")
        self.model, self.source = model, source
        self.training = training or {}
        self.input_shape = tuple(int(s) for s in shape)
        self.names, self.dark_background = model_labels(self.training)
        self.layers = list(model.layers) if isinstance(model, Sequential) else [model]
        params = [layer.params[key] for _, layer, key in model.named_parameters()]
        self.dtype = params[0].dtype if params else np.dtype(np.float32)  # a float64 model runs in float64
        self.lock = threading.Lock()
        with self.lock:
            outputs = self._forward(np.zeros(self.input_shape, dtype=np.float32))
        self.output_shapes = [list(out.shape[1:]) for out in outputs]
        classes = self.output_shapes[-1][0] if len(self.output_shapes[-1]) == 1 else None
        if classes is None:
            raise ConfigError(f"{source or 'the model'}: expected logits (N, K) out of the model, got shape "
                              f"(N, {', '.join(map(str, self.output_shapes[-1]))})")
        if self.names is not None and len(self.names) != classes:
            raise ConfigError(f"{source or 'the model'}: its record names {len(self.names)} classes but the "
                              f"model outputs {classes}")
        self.names = list(self.names) if self.names is not None else [f"class {k}" for k in range(classes)]
        self.examples = examples  # (x (K, C, H, W) uint8, y (K,)) for the page to open on, or None

    @classmethod
    def from_path(cls, path, device: str = "cpu", examples=None) -> "Explainer":
        """An Explainer for a model .npz or a run folder (ModelFileError if it cannot be read),
        computing on device ("cpu" or "cuda"). examples: (x, y) to open the page on; default one
        test image per class of the run's dataset, when it is on this machine."""
        model, training = read_model(path)
        if examples is None:
            examples = from_dataset(training, model.input_shape)
        return cls(model.to(device), training, str(path), examples)

    def example_images(self) -> list[dict]:
        """What GET /api/examples answers: [{"label", "name", "png" (base64)}], one per example."""
        if self.examples is None:
            return []
        x, y = self.examples
        return [{"label": int(label), "name": self.names[int(label)], "png": as_png(image)}
                for image, label in zip(x, y) if image.shape[0] == self.input_shape[0]]

    # -- the model, described --------------------------------------------------------------------
    def describe(self) -> dict:
        """What GET /api/model answers: architecture, input shape, classes and normalisation."""
        norm = next((layer for _, layer in self.model.named_layers() if isinstance(layer, Normalize)), None)
        return {
            "source": self.source,
            "model": self.training.get("model"),
            "dataset": self.training.get("dataset"),
            "input_shape": list(self.input_shape),
            "classes": self.names,
            "dark_background": self.dark_background,
            "normalization": None if norm is None else {"mean": norm.config()["mean"], "std": norm.config()["std"]},
            "parameters": int(self.model.num_params()),
            "layers": [{"index": i, "type": type(layer).__name__, "description": _describe(layer),
                        "config": layer.config(), "output_shape": shape, "parameters": int(layer.num_params()),
                        "detail": _detail_kind(layer)}
                       for i, (layer, shape) in enumerate(zip(self.layers, self.output_shapes))],
            "architecture": to_config(self.model),
        }

    # -- input -----------------------------------------------------------------------------------
    def read(self, body: bytes) -> tuple[np.ndarray, bool]:
        """Image bytes -> (x (C, H, W) float32 in [0, 1], inverted), as ``numcnn predict`` reads files.

        Refuses a decompression bomb before decoding (ImageTooLarge); anything else unreadable,
        truncated included, is a DataError.
        """
        check_image_size(body)
        return read_image(_Upload(body), self.input_shape, self.dark_background)

    # -- the three answers -----------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> list[dict]:
        """Every class with its probability, most probable first. x: (C, H, W)."""
        with self.lock:
            probs = predict_proba(self.model, x[None].astype(self.dtype, copy=False))[0]
        return self._ranked(probs)

    def explain(self, x: np.ndarray) -> dict:
        """Layer outputs, logits, softmax and saliency for one input x (C, H, W).

        Parameters
        ----------
        saliency
            d logit[top] / d x, (C, H, W), through every layer's own backward.
        """
        with self.lock, self.model.evaluating():
            outputs = self._forward(x)
            logits = outputs[-1]
            top = int(np.argmax(logits[0]))
            dout = np.zeros_like(logits)
            dout[0, top] = 1
            dout = to_device(dout, self.model.device)
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
            saliency = to_numpy(dout)[0]
            outputs = [np.array(out[0], dtype=np.float32) for out in outputs]  # copies, taken under the lock
        probs = softmax(logits.astype(np.float64), axis=1)[0]
        return {
            "predictions": self._ranked(probs),
            "top": top,
            "logits": [float(v) for v in logits[0]],
            "probabilities": [float(v) for v in probs],
            "input": encode(x),
            "saliency": encode(saliency),
            "layers": [{"index": i, "type": type(layer).__name__, "output": encode(out),
                        "detail": _detail_kind(layer)}
                       for i, (layer, out) in enumerate(zip(self.layers, outputs))],
        }

    def detail(self, x: np.ndarray, index: int, channel: int, y: int, x_pos: int) -> dict:
        """How output pixel (channel, y, x_pos) of layer ``index`` was computed, for input x (C, H, W).

        A conv layer gives the window, the kernel weights, the products summed per input channel
        plus the bias, and the im2col row; a pooling layer its window and winner or average.
        Every number comes from numcnn's kernels on this very input.
        """
        if not (isinstance(index, int) and 0 <= index < len(self.layers)):
            raise ConfigError(f"layer must be an index from 0 to {len(self.layers) - 1}, got {index}")
        layer = self.layers[index]
        kind = _detail_kind(layer)
        if kind is None:
            raise ConfigError(f"layer {index} is a {type(layer).__name__}; details exist for the convolution and "
                              f"pooling layers only")
        shape = self.output_shapes[index]
        for name, value, size in (("channel", channel, shape[0]), ("y", y, shape[1]), ("x", x_pos, shape[2])):
            if not (isinstance(value, int) and 0 <= value < size):
                raise ConfigError(f"{name} must be from 0 to {size - 1} for layer {index} "
                                  f"(output {' x '.join(map(str, shape))}), got {value}")
        with self.lock, self.model.evaluating():
            outputs = self._forward(x)
            layer_input = np.array(outputs[index - 1] if index else x[None].astype(self.dtype), copy=True)
            value = float(outputs[index][0, channel, y, x_pos])
        answer = {"layer": index, "type": type(layer).__name__, "description": _describe(layer),
                  "channel": channel, "y": y, "x": x_pos, "value": value,
                  "input_shape": list(layer_input.shape[1:])}
        if kind == "conv":
            answer.update(_conv_detail(layer, layer_input, channel, y, x_pos))
        elif kind == "conv_transpose":
            answer.update(_conv_transpose_detail(layer, layer_input, channel, y, x_pos))
        elif isinstance(layer, (AdaptiveAvgPool2d, AdaptiveMaxPool2d)):  # GlobalMaxPool2d is an AdaptiveMaxPool2d
            answer.update(_adaptive_detail(layer, layer_input, channel, y, x_pos))
        else:
            answer.update(_pool_detail(layer, layer_input, channel, y, x_pos))
        return answer

    # -- helpers ---------------------------------------------------------------------------------
    def _forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Every top-level layer's output for one input x (C, H, W), each (1, ...), on the host
        (computed where the model is). Hold the lock."""
        out = to_device(x[None].astype(self.dtype, copy=False), self.model.device)
        outputs = []
        with self.model.evaluating():
            for layer in self.layers:
                out = layer.forward(out)
                outputs.append(to_numpy(out))
        return outputs

    def _ranked(self, probs: np.ndarray) -> list[dict]:
        order = np.argsort(-probs, kind="stable")
        return [{"class": self.names[k], "index": int(k), "probability": float(probs[k])} for k in order]


def _conv_detail(layer: Conv2d, layer_input: np.ndarray, channel: int, y: int, x: int) -> dict:
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
        "window": _window_taps(win, y, x, height, width),
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


def _pool_detail(layer, layer_input: np.ndarray, channel: int, y: int, x: int) -> dict:
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
    taps = _window_taps(win, y, x, height, width)
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


def _adaptive_detail(layer, layer_input: np.ndarray, channel: int, y: int, x: int) -> dict:
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


def _conv_transpose_detail(layer, layer_input: np.ndarray, channel: int, y: int, x: int) -> dict:
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
