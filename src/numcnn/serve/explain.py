"""What the page shows, computed by numcnn itself: no HTTP here, only arrays and numbers.

An ``Explainer`` wraps one model. It turns uploaded image bytes into the model's input the way
``numcnn predict`` does, runs the model layer by layer, and answers:

* ``predict``: the softmax of the logits, every class;
* ``explain``: every layer's output, those inside a block too, the logits and the saliency (the
  gradient of the top class's logit with respect to the input, from the model's own ``backward``);
* ``detail``: how one output pixel of a layer came about (``details``): a conv's window, weights
  and sums, a pooling window, batch norm with its running statistics, an activation, a residual
  block's two branches and their sum;
* ``receptive``: the region of the input image that can change that pixel (``receptive``);
* ``playground``: one map convolved with the kernel size, padding, stride and dilation a user
  picks (``playground``).

Layers are named by their dotted path (``blocks``): "3" at the top, "3.0" inside the block at 3.
Layers keep caches during ``forward``, so one model must not run two requests at once: every
use of the model holds ``self.lock``. Decoding an image needs no lock.
"""

from __future__ import annotations

import threading

import numpy as np

from ..backend import to_device, to_numpy
from ..data import model_labels, read_image
from ..errors import ConfigError
from ..functional.activation import softmax
from ..inference import predict_proba
from ..layers import AdaptiveAvgPool2d, AdaptiveMaxPool2d, Normalize
from ..model import Sequential, read_model, to_config
from . import details
from .blocks import Node, flatten, forward, input_of, run, tree
from .examples import as_png, from_dataset
from .payload import ImageTooLarge, Upload, check_image_size, encode
from .playground import playground
from .receptive import chain, plane, trace

__all__ = ["Explainer", "ImageTooLarge", "check_image_size", "encode"]


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
        self.nodes = tree(self.layers)
        self.by_path = {node.path: node for node in flatten(self.nodes)}
        params = [layer.params[key] for _, layer, key in model.named_parameters()]
        self.dtype = params[0].dtype if params else np.dtype(np.float32)  # a float64 model runs in float64
        self.lock = threading.Lock()
        with self.lock, self.model.evaluating():
            outputs = self._trace(np.zeros(self.input_shape, dtype=np.float32))
        self.shapes = {path: tuple(out.shape[1:]) for path, out in outputs.items()}
        self.output_shapes = [list(self.shapes[node.path]) for node in self.nodes]
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
        """What GET /api/model answers: architecture, input shape, classes and normalisation.

        "layers" holds the top-level layers, each {"index", "path", "type", "description",
        "config", "input_path", "output_shape", "parameters", "detail"}, and a block's
        "children" in the same form (without "index", with "branch": "body" or "shortcut").
        """
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
            "layers": [{"index": i, **self._entry(node)} for i, node in enumerate(self.nodes)],
            "architecture": to_config(self.model),
        }

    def _entry(self, node: Node) -> dict:
        entry = {"path": node.path, "type": type(node.layer).__name__,
                 "description": details.describe_layer(node.layer), "config": node.layer.config(),
                 "input_path": node.input_path,
                 "output_shape": list(self.shapes[node.path]), "parameters": int(node.layer.num_params()),
                 "detail": details.detail_kind(node.layer)}
        if node.branch:
            entry["branch"] = node.branch
        if node.children:
            entry["children"] = [self._entry(child) for child in node.children]
        return entry

    # -- input -----------------------------------------------------------------------------------
    def read(self, body: bytes) -> tuple[np.ndarray, bool]:
        """Image bytes -> (x (C, H, W) float32 in [0, 1], inverted), as ``numcnn predict`` reads files.

        Refuses a decompression bomb before decoding (ImageTooLarge); anything else unreadable,
        truncated included, is a DataError.
        """
        check_image_size(body)
        return read_image(Upload(body), self.input_shape, self.dark_background)

    # -- the answers -----------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> list[dict]:
        """Every class with its probability, most probable first. x: (C, H, W)."""
        with self.lock:
            probs = predict_proba(self.model, x[None].astype(self.dtype, copy=False))[0]
        return self._ranked(probs)

    def explain(self, x: np.ndarray) -> dict:
        """Layer outputs, logits, softmax and saliency for one input x (C, H, W).

        Returns
        -------
        dict
            "layers": each top-level layer's {"index", "path", "type", "detail", "output"}, a
            block's with its "children" in the same form; "saliency": d logit[top] / d x,
            (C, H, W), through every layer's own backward.
        """
        with self.lock, self.model.evaluating():
            image = to_device(x[None].astype(self.dtype, copy=False), self.model.device)
            out, inputs, outputs = image, [], {}
            for node in self.nodes:  # the model's own forward: its caches serve the backward
                inputs.append(out)
                out = node.layer.forward(out)
                outputs[node.path] = to_numpy(out)
            logits = outputs[self.nodes[-1].path]
            top = int(np.argmax(logits[0]))
            dout = np.zeros_like(logits)
            dout[0, top] = 1
            dout = to_device(dout, self.model.device)
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
            saliency = to_numpy(dout)[0]
            for node, node_input in zip(self.nodes, inputs):  # then opened: the layers inside each block
                if node.children:
                    forward(node, node_input, outputs)
            # copies, taken under the lock
            outputs = {path: np.array(out[0], dtype=np.float32) for path, out in outputs.items()}
        probs = softmax(logits.astype(np.float64), axis=1)[0]

        def entry(node: Node, extra: dict) -> dict:
            answer = {**extra, "path": node.path, "type": type(node.layer).__name__,
                      "output": encode(outputs[node.path]), "detail": details.detail_kind(node.layer)}
            if node.children:
                answer["children"] = [entry(child, {}) for child in node.children]
            return answer

        return {
            "predictions": self._ranked(probs),
            "top": top,
            "logits": [float(v) for v in logits[0]],
            "probabilities": [float(v) for v in probs],
            "input": encode(x),
            "saliency": encode(saliency),
            "layers": [entry(node, {"index": i}) for i, node in enumerate(self.nodes)],
        }

    def detail(self, x: np.ndarray, layer, channel: int, y: int, x_pos: int) -> dict:
        """How output pixel (channel, y, x_pos) of a layer was computed, for input x (C, H, W).

        layer: a path ("3.0") or a top-level index. A vector output (K,) is one row of pixels:
        channel 0, y 0, x_pos the feature. Every number comes from numcnn's kernels on this very
        input, or from the layer's own arrays (weights, running statistics); see ``details``.
        """
        node = self.node(layer)
        kind = details.detail_kind(node.layer)
        if kind is None:
            raise ConfigError(f"layer {node.path} is a {type(node.layer).__name__}; details exist for convolution, "
                              f"pooling, batch norm, Normalize, activation layers and residual blocks")
        where = self._where(node, channel, y, x_pos)
        with self.lock, self.model.evaluating():
            image = x[None].astype(self.dtype)
            outputs = self._trace(x)
            layer_input = np.array(input_of(node, outputs, image), copy=True)
            value = float(outputs[node.path][(0, *where)])
        answer = {"layer": node.path, "path": node.path, "type": type(node.layer).__name__,
                  "description": details.describe_layer(node.layer), "channel": channel, "y": y, "x": x_pos,
                  "value": value, "input_shape": list(layer_input.shape[1:])}
        layer = node.layer
        if kind == "conv":
            answer.update(details.conv_detail(layer, layer_input, *where))
        elif kind == "conv_transpose":
            answer.update(details.conv_transpose_detail(layer, layer_input, *where))
        elif kind == "pool" and isinstance(layer, (AdaptiveAvgPool2d, AdaptiveMaxPool2d)):  # GlobalMaxPool2d too
            answer.update(details.adaptive_detail(layer, layer_input, *where))
        elif kind == "pool":
            answer.update(details.pool_detail(layer, layer_input, *where))
        elif kind == "residual":
            answer.update(details.residual_detail(node, outputs, image, where))
        else:  # batch_norm, normalize, activation: one input pixel in, one out
            answer.update(getattr(details, f"{kind}_detail")(layer, layer_input, where))
        return answer

    def receptive(self, layer, y: int, x: int) -> dict:
        """The region of the input image that output pixel (y, x) of a layer (any channel) can
        depend on, through every layer before it.

        Returns
        -------
        dict
            "rows", "cols": [first, last] on the input image (None when no input pixel
            reaches it: a window wholly in the padding); "height", "width": the region's size; "input_size": [H, W]; "trace": the region on each layer's input, going back
            ({"path", "rows", "cols"}, the clicked layer first, the first layer last).
        """
        node = self.node(layer)
        height, width = plane(self.shapes[node.path])
        for name, value, size in (("y", y, height), ("x", x, width)):
            if not (isinstance(value, int) and 0 <= value < size):
                raise ConfigError(f"{name} must be from 0 to {size - 1} for layer {node.path} "
                                  f"(a map of {height} x {width}), got {value}")
        regions = trace(chain(node, self.by_path, self.shapes, self.input_shape), y, x)
        rows, cols = regions[-1]["rows"], regions[-1]["cols"]
        return {"layer": node.path, "y": y, "x": x, "rows": rows, "cols": cols,
                "height": rows[1] - rows[0] + 1 if rows else 0, "width": cols[1] - cols[0] + 1 if cols else 0,
                "input_size": list(self.input_shape[1:]), "trace": regions}

    def playground(self, x: np.ndarray, layer, channel: int, kernel: int, stride: int, padding: int,
                   dilation: int) -> dict:
        """The conv arithmetic playground (``playground.playground``) on channel ``channel`` of a
        layer's input, or of the input image x (C, H, W) when layer is None."""
        node = None if layer is None else self.node(layer)
        shape = self.input_shape if node is None or node.input_path is None else self.shapes[node.input_path]
        where = "the input image" if node is None else f"the input of layer {node.path}"
        if len(shape) != 3:
            raise ConfigError(f"{where} is a vector of {shape[0]} values, not C x H x W maps")
        if not (isinstance(channel, int) and 0 <= channel < shape[0]):
            raise ConfigError(f"channel must be from 0 to {shape[0] - 1} for {where}, got {channel}")
        if node is None:
            source = x[channel].astype(np.float32)
        else:
            with self.lock, self.model.evaluating():
                outputs = self._trace(x)
                source = np.array(input_of(node, outputs, x[None])[0, channel], dtype=np.float32)
        answer = playground(source, kernel, stride, padding, dilation)
        return {**answer, "source": {"layer": None if node is None else node.path, "channel": channel,
                                     "description": f"channel {channel} of {where}"},
                "input": encode(source), "output": None if answer["output"] is None else encode(answer["output"])}

    # -- helpers ---------------------------------------------------------------------------------
    def node(self, layer) -> Node:
        """The layer at path layer ("3.0"), or at top-level index layer; ConfigError if none."""
        path = str(layer) if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool) else layer
        if path not in self.by_path:
            raise ConfigError(f"layer must be a top-level index from 0 to {len(self.nodes) - 1} or the path of a "
                              f"layer inside a block (such as {self._example_path()}), got {layer!r}")
        return self.by_path[path]

    def _example_path(self) -> str:
        return next((path for path in self.by_path if "." in path), "3.0")

    def _where(self, node: Node, channel, y, x) -> tuple[int, ...]:
        """The index into one sample's output of node: (channel, y, x) of a map, (x,) of a vector."""
        shape = self.shapes[node.path]
        named = (("channel", channel, shape[0]), ("y", y, shape[1]), ("x", x, shape[2])) if len(shape) == 3 else \
            (("channel", channel, 1), ("y", y, 1), ("x", x, shape[-1]))
        for name, value, size in named:
            if not (isinstance(value, int) and 0 <= value < size):
                raise ConfigError(f"{name} must be from 0 to {size - 1} for layer {node.path} "
                                  f"(output {' x '.join(map(str, shape))}), got {value}")
        return (channel, y, x) if len(shape) == 3 else (x,)

    def _trace(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output, by path, for one input x (C, H, W), each (1, ...), on the host
        (computed where the model is). Hold the lock, in eval mode."""
        outputs = {}
        run(self.nodes, to_device(x[None].astype(self.dtype, copy=False), self.model.device), outputs)
        return outputs

    def _ranked(self, probs: np.ndarray) -> list[dict]:
        order = np.argsort(-probs, kind="stable")
        return [{"class": self.names[k], "index": int(k), "probability": float(probs[k])} for k in order]
