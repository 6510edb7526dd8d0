"""numcnn -> ONNX (opset 17), for inference in onnxruntime or anything else that reads ONNX.

Every leaf layer becomes one ONNX node (two for a Linear fed a 4-D input), containers are
flattened into the one graph, and a Residual becomes its body, its skip path and an Add:

::

    numcnn layer       ONNX op               notes
    ----------------   -------------------   ---------------------------------------------
    Conv2d             Conv                  pads/strides/dilations/group; 'same' -> explicit,
                                             possibly asymmetric, pads
    ConvTranspose2d    ConvTranspose         pads/strides/dilations/group/output_padding
    Linear             [Flatten] + Gemm      transB=1; Flatten only when the input is > 2-D
    ReLU / LeakyReLU   Relu / LeakyRelu      alpha = negative_slope
    Sigmoid / Tanh     Sigmoid / Tanh
    Softmax            Softmax               axis=1
    MaxPool2d          MaxPool               ceil_mode and dilations as the layer has them
    AvgPool2d          AveragePool           count_include_pad as the layer has it
    GlobalAvgPool2d    GlobalAveragePool     (and AdaptiveAvgPool2d to 1 x 1)
    GlobalMaxPool2d    GlobalMaxPool         (and AdaptiveMaxPool2d to 1 x 1)
    BatchNorm1d/2d     BatchNormalization    eval mode: normalises with the running stats
    Normalize          Sub + Div             mean and std as (1, C, 1, 1) initializers
    Flatten            Flatten               axis=1
    Dropout            Identity              dropout is the identity at inference
    Residual           body ... + Add        the optional shortcut layer feeds the Add
    Sequential         (its children)

The file is always float32: a float64 model's weights are rounded to float32 on the way out,
because the float32 kernels are the ones every ONNX runtime provides (onnxruntime has no
float64 Conv on CPU). The batch axis is symbolic ("N"); C, H and W are fixed by input_shape.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..errors import ConfigError, NumcnnError, ShapeError
from ..functional import pair, resolve_padding
from ..functional.adaptive import output_pair
from ..functional.pool import pool_pads, pool_params, pool_window
from ..layers import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d,
                      ConvTranspose2d, Dropout, Flatten, GlobalAvgPool2d, GlobalMaxPool2d, Layer, LeakyReLU, Linear,
                      MaxPool2d, Normalize, ReLU, Sigmoid, Softmax, Tanh)
from ..io import atomic_write_bytes
from ..model import Residual, Sequential
from ._onnx_common import IR_VERSION, OPSET, onnx_pads, require_onnx, training_props

EXPORT_DTYPE = np.float32


class _Graph:
    """Collects nodes and initializers while the layer tree is walked."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes = []
        self.initializers = []

    def weight(self, name: str, array: np.ndarray) -> str:
        array = np.ascontiguousarray(array, dtype=EXPORT_DTYPE)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], prefix: str, **attrs) -> str:
        """Add one node named like PyTorch's exporter does ("/3/1/Conv"); returns its output."""
        name = "/" + "/".join(filter(None, prefix.split("."))) + "/" + op if prefix else "/" + op
        output = name + "_output"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def rename(self, old: str, new: str) -> None:
        for node in self.nodes:
            for names in (node.input, node.output):
                for i, name in enumerate(names):
                    if name == old:
                        names[i] = new


def _key(prefix: str, name: str) -> str:
    """The state-dict key, so initializers carry the same names as ``model.state_dict()``."""
    return f"{prefix}.{name}" if prefix else name


# -- one function per leaf layer: (graph, layer, prefix, input name, input sample) -> output name --
def _conv(g: _Graph, layer: Conv2d, prefix: str, x: str, sample: np.ndarray) -> str:
    stride = pair(layer.stride, "stride", 1)
    dilation = pair(layer.dilation, "dilation", 1)
    pads = resolve_padding(layer.padding, layer.kernel_size, dilation, stride)
    inputs = [x, g.weight(_key(prefix, "weight"), layer.params["weight"])]
    if "bias" in layer.params:
        inputs.append(g.weight(_key(prefix, "bias"), layer.params["bias"]))
    return g.node("Conv", inputs, prefix, kernel_shape=list(layer.kernel_size), strides=list(stride),
                  pads=onnx_pads(pads), dilations=list(dilation), group=layer.groups)


def _conv_transpose(g: _Graph, layer: ConvTranspose2d, prefix: str, x: str, sample: np.ndarray) -> str:
    stride, dilation = pair(layer.stride, "stride", 1), pair(layer.dilation, "dilation", 1)
    ph, pw = pair(layer.padding, "padding")
    inputs = [x, g.weight(_key(prefix, "weight"), layer.params["weight"])]
    if "bias" in layer.params:
        inputs.append(g.weight(_key(prefix, "bias"), layer.params["bias"]))
    return g.node("ConvTranspose", inputs, prefix, kernel_shape=list(layer.kernel_size), strides=list(stride),
                  pads=onnx_pads((ph, ph, pw, pw)), dilations=list(dilation), group=layer.groups,
                  output_padding=list(pair(layer.output_padding, "output_padding")))


def _linear(g: _Graph, layer: Linear, prefix: str, x: str, sample: np.ndarray) -> str:
    # Our Linear flattens what it is given; Gemm wants exactly (N, in_features).
    if sample.ndim != 2:
        x = g.node("Flatten", [x], prefix, axis=1)
    inputs = [x, g.weight(_key(prefix, "weight"), layer.params["weight"])]
    if "bias" in layer.params:
        inputs.append(g.weight(_key(prefix, "bias"), layer.params["bias"]))
    return g.node("Gemm", inputs, prefix, transB=1)


def _pool_attrs(layer, prefix: str, sample: np.ndarray, dilation=(1, 1), counts_padding: bool = False) -> dict:
    """The attributes MaxPool and AveragePool share, for the pool's input sample (1, C, H, W).

    ONNX's ceil_mode keeps a last window that starts in the right or bottom padding, where
    PyTorch's (and numcnn's) drops it. Where that window exists, the pool is written with
    ceil_mode off and the extra rows and columns numcnn pads by (padding ignored by a max, and
    by an average that does not count padding); an average that counts it cannot be written so.
    """
    kernel, stride, _, _ = pool_params(layer.kernel_size, layer.stride, layer.padding)
    # Explicit pads, "same" resolved for this input: runtimes disagree on SAME_UPPER with dilation.
    pads = pool_pads(sample.shape, layer.kernel_size, layer.stride, layer.padding, dilation=dilation)
    attrs = {"kernel_shape": list(kernel), "strides": list(stride), "pads": onnx_pads(pads)}
    if not layer.ceil_mode:
        return {**attrs, "ceil_mode": 0}
    win = pool_window(sample.shape, layer.kernel_size, layer.stride, layer.padding, dilation=dilation,
                      ceil_mode=True)
    theirs = [-(-(size + before + after - d * (k - 1) - 1) // s) + 1 for size, before, after, d, k, s in
              zip(sample.shape[2:], pads[::2], pads[1::2], dilation, kernel, stride)]
    if theirs == [win.oh, win.ow]:
        return {**attrs, "ceil_mode": 1}
    if counts_padding:
        raise ConfigError(f"export_onnx: layer {prefix!r}, an AvgPool2d with ceil_mode and count_include_pad, "
                          f"has {win.oh}x{win.ow} windows on a {sample.shape[2]}x{sample.shape[3]} input where "
                          f"ONNX's AveragePool has {theirs[0]}x{theirs[1]}; export it with count_include_pad=False "
                          f"or without ceil_mode")
    return {**attrs, "pads": onnx_pads(win.pads), "ceil_mode": 0}


def _global(g, layer, prefix, x, op: str):
    """An adaptive pool to 1 x 1 is ONNX's global pool; other output sizes have no ONNX op."""
    if tuple(output_pair(layer.output_size)) != (1, 1):
        raise ConfigError(f"export_onnx: layer {prefix!r} is a {type(layer).__name__} to {layer.output_size}; "
                          f"ONNX has adaptive pooling to 1 x 1 only ({op})")
    return g.node(op, [x], prefix)


def _max_pool(g, layer: MaxPool2d, prefix, x, sample):
    dilation = pool_params(layer.kernel_size, layer.stride, layer.padding, dilation=layer.dilation)[3]
    return g.node("MaxPool", [x], prefix, dilations=list(dilation), **_pool_attrs(layer, prefix, sample, dilation))


def _avg_pool(g, layer: AvgPool2d, prefix, x, sample):
    if layer.divisor_override is not None:
        raise ConfigError(f"{prefix}: AvgPool2d with divisor_override={layer.divisor_override} has no ONNX "
                          f"AveragePool equivalent")
    return g.node("AveragePool", [x], prefix, count_include_pad=int(layer.count_include_pad),
                  **_pool_attrs(layer, prefix, sample, counts_padding=layer.count_include_pad))


def _batch_norm(g, layer, prefix, x, sample):
    arrays = (layer.params["weight"], layer.params["bias"],
              layer.buffers["running_mean"], layer.buffers["running_var"])
    names = ("weight", "bias", "running_mean", "running_var")
    inputs = [x] + [g.weight(_key(prefix, n), a) for n, a in zip(names, arrays)]
    # ONNX's momentum weighs the old running value, PyTorch's (and ours) the new batch value.
    momentum = 0.9 if layer.momentum is None else 1.0 - layer.momentum
    return g.node("BatchNormalization", inputs, prefix, epsilon=layer.eps, momentum=momentum)


def _normalize(g, layer: Normalize, prefix, x, sample):
    # Shaped (1, C, 1, 1) so that ONNX's trailing-axis broadcasting meets the channel axis.
    shape = (1, -1) + (1,) * (sample.ndim - 2)
    mean = g.weight(_key(prefix, "mean"), layer.buffers["mean"].reshape(shape))
    std = g.weight(_key(prefix, "std"), layer.buffers["std"].reshape(shape))
    return g.node("Div", [g.node("Sub", [x, mean], prefix), std], prefix)


def _simple(op: str, **attrs) -> Callable:
    """An exporter for a layer that is one attribute-free (or fixed-attribute) node."""
    return lambda g, layer, prefix, x, sample: g.node(op, [x], prefix, **attrs)


# Exact types only: a subclass may change forward, and then the ONNX op would lie.
EXPORTERS: dict[type, Callable] = {
    Conv2d: _conv,
    ConvTranspose2d: _conv_transpose,
    Linear: _linear,
    ReLU: _simple("Relu"),
    LeakyReLU: lambda g, layer, prefix, x, sample: g.node("LeakyRelu", [x], prefix,
                                                          alpha=layer.negative_slope),
    Sigmoid: _simple("Sigmoid"),
    Tanh: _simple("Tanh"),
    Softmax: _simple("Softmax", axis=1),
    MaxPool2d: _max_pool,
    AvgPool2d: _avg_pool,
    GlobalAvgPool2d: _simple("GlobalAveragePool"),
    GlobalMaxPool2d: _simple("GlobalMaxPool"),
    AdaptiveAvgPool2d: lambda g, layer, prefix, x, sample: _global(g, layer, prefix, x, "GlobalAveragePool"),
    AdaptiveMaxPool2d: lambda g, layer, prefix, x, sample: _global(g, layer, prefix, x, "GlobalMaxPool"),
    BatchNorm1d: _batch_norm,
    BatchNorm2d: _batch_norm,
    Normalize: _normalize,
    Flatten: _simple("Flatten", axis=1),
    Dropout: _simple("Identity"),
}


def _emit(g: _Graph, layer: Layer, prefix: str, x: str, sample: np.ndarray) -> tuple[str, np.ndarray]:
    """Add the nodes computing ``layer`` on tensor ``x``; returns (output name, output sample).

    ``sample`` is a real (1, ...) input pushed through the model alongside, so each exporter
    knows its input rank (Linear) and a model that does not fit input_shape fails here.
    """
    if isinstance(layer, Residual):
        body, body_sample = x, sample
        for i, child in enumerate(layer.layers):
            body, body_sample = _emit(g, child, _key(prefix, str(i)), body, body_sample)
        skip, skip_sample = x, sample
        if layer.shortcut is not None:
            skip, skip_sample = _emit(g, layer.shortcut, _key(prefix, "shortcut"), x, sample)
        if body_sample.shape != skip_sample.shape:
            raise ShapeError(f"export_onnx: Residual {prefix!r} adds its body's {body_sample.shape} "
                             f"to the skip path's {skip_sample.shape}")
        return g.node("Add", [body, skip], prefix), body_sample + skip_sample
    if isinstance(layer, Sequential):
        for i, child in enumerate(layer.layers):
            x, sample = _emit(g, child, _key(prefix, str(i)), x, sample)
        return x, sample
    exporter = EXPORTERS.get(type(layer))
    if exporter is None:
        supported = ", ".join(sorted(cls.__name__ for cls in EXPORTERS))
        raise ConfigError(f"export_onnx: layer {prefix or '<model>'!r} is a {type(layer).__name__}, which has "
                          f"no ONNX mapping; supported: {supported}, Sequential, Residual")
    y = exporter(g, layer, prefix, x, sample)
    try:
        return y, layer.forward(sample)
    except NumcnnError as exc:
        raise type(exc)(f"export_onnx: layer {prefix or '<model>'!r} ({type(layer).__name__}) does not run "
                        f"on its input of shape (N, {', '.join(map(str, sample.shape[1:]))}): {exc}") from None


def _model_dtype(model: Layer) -> np.dtype:
    for _, layer in model.named_layers():
        for value in layer.params.values():
            if value.dtype.kind == "f":
                return value.dtype
    return np.dtype(np.float32)


def _sample_shape(model: Layer, input_shape) -> tuple[int, ...]:
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
    if input_shape is None:
        raise ConfigError("export_onnx: give input_shape (C, H, W); the model has no input_shape of its own")
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"export_onnx: input_shape must be a tuple of ints, got {input_shape!r}") from None
    if len(shape) == 4:  # (N, C, H, W): the batch size is not part of the graph
        shape = shape[1:]
    if not shape or min(shape) < 1:
        raise ConfigError(f"export_onnx: input_shape must be (C, H, W) of positive ints, got {input_shape!r}")
    return shape


def to_onnx_model(model: Layer, input_shape: Iterable[int] | None = None, training: dict | None = None):
    r"""Build the ``onnx.ModelProto`` that ``export_onnx`` writes (checked by onnx.checker).

    Graph input "input" (N, \*input_shape) -> graph output "output" (N, ...), float32.

    Parameters
    ----------
    model : Layer
        As ``export_onnx`` takes it.
    input_shape : iterable of int, optional
        (C, H, W) of one sample, or (N, C, H, W) with N ignored; defaults to
        ``model.input_shape``. An MLP takes (features,).
    training : dict, optional
        The model's training record (``read_model``'s second value), or None; kept as JSON in
        the file's metadata_props under "numcnn.training".

    Returns
    -------
    onnx.ModelProto
        The model.
    """
    onnx = require_onnx()
    shape = _sample_shape(model, input_shape)
    g = _Graph(onnx)
    with model.evaluating():  # trace with dropout off and the running statistics
        sample = np.zeros((1, *shape), dtype=_model_dtype(model))
        output, out_sample = _emit(g, model, "", "input", sample)
    if output == "input":  # an empty model: the graph still needs a node
        output = g.node("Identity", ["input"], "")
    g.rename(output, "output")

    helper, elem = onnx.helper, onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, "numcnn", [helper.make_tensor_value_info("input", elem, ["N", *shape])],
        [helper.make_tensor_value_info("output", elem, ["N", *out_sample.shape[1:]])],
        initializer=g.initializers)
    from .. import __version__
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="numcnn", producer_version=__version__)
    proto.ir_version = IR_VERSION
    helper.set_model_props(proto, training_props(training))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ConfigError(f"export_onnx: ONNX's checker rejects the graph written for this model: "
                          f"{str(exc).strip()}") from exc
    return proto


def export_onnx(model: Layer, path, input_shape: Iterable[int] | None = None,
                training: dict | None = None) -> str:
    """Write ``model`` as an ONNX file (opset 17, float32, batch axis dynamic); returns the path.

    Graph input "input" (N, C, H, W) float32, N symbolic -> graph output "output" (N, ...).
    Weights are float32 initializers named by state-dict key; a float64 model is rounded to
    float32. The graph computes the model in eval mode: dropout is the identity and batch norm
    uses the running statistics, whatever mode the model is in (its modes are left unchanged).

    Parameters
    ----------
    model : Layer
        A Sequential (nested Sequential/Residual allowed) or a single layer, made of the layers
        in the table at the top of this module; any other layer type is a ConfigError that
        names it.
    path : str or path
        Where to write; written atomically (a temporary file renamed into place).
    input_shape : iterable of int, optional
        (C, H, W), or (N, C, H, W) with N ignored; defaults to ``model.input_shape``.
    training : dict, optional
        The model's training record (class names, dataset, dark_background, ...: what
        ``read_model`` returns beside the model), or None; it goes into the file's
        metadata_props, and ``read_onnx`` gives it back.

    Returns
    -------
    str
        The path written.
    """
    proto = to_onnx_model(model, input_shape, training)
    atomic_write_bytes(path, proto.SerializeToString())
    return str(path)
