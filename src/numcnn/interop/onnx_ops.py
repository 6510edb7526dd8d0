"""The ONNX ops numcnn imports: one converter per op type, (importer, node) -> None, each adding
its layer (or folding its constant) through the importer (``onnx_import.Importer``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..functional import resolve_padding
from ..functional.conv_transpose import transposed_size
from ..layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, GlobalAvgPool2d,
                      GlobalMaxPool2d, Layer, LeakyReLU, Linear, MaxPool2d, Normalize, ReLU, Sigmoid, Softmax, Tanh)
from ._onnx_common import numcnn_pads


@dataclass(eq=False)
class Op:
    """How one computed tensor is made: ``layer`` applied to ``inputs[0]``, or (layer None)
    the sum of the two computed tensors ``inputs``."""

    layer: Layer | None
    inputs: tuple[str, ...]
    where: str


def f32(value: float) -> float:
    """An ONNX float attribute (stored as float32) as the short decimal it was written from:
    epsilon 9.99999974e-06 -> 1e-05, so configs and reprs read as the user wrote them."""
    return float(str(np.float32(value)))


# -- per-op converters: (importer, node) -> None, registering the node's output ---------------------
def _explicit_pads(imp, node, attrs, x, kernel, stride, dilation):
    """(top, bottom, left, right), from ``pads`` or computed from ``auto_pad`` as ONNX defines it."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = attrs.get("pads", [0, 0, 0, 0])
        if len(pads) != 4:
            raise imp.error(node, f"pads {pads} are not 2-D")
        return numcnn_pads(pads)
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise imp.error(node, f"unknown auto_pad {auto!r}")
    pads = []
    for size, k, s, d in zip(imp.spatial(x), kernel, stride, dilation):
        if s == 1:
            total = d * (k - 1)
        elif size is None:
            raise imp.error(node, f"auto_pad={auto} with stride {s} needs a known input size")
        else:
            total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
        small, big = total // 2, total - total // 2
        pads += [small, big] if auto == "SAME_UPPER" else [big, small]
    return tuple(pads)


def _pair(imp, node, attrs, name, default):
    value = [int(v) for v in attrs.get(name, default)]
    if len(value) != 2:
        raise imp.error(node, f"{name} {value} is not 2-D; numcnn imports 2-D convolution and pooling only")
    return tuple(value)


def _short(pair):
    """(3, 3) -> 3, so an imported layer reads like one written by hand; (3, 1) stays a pair, and
    so does anything that is not a pair ("same", four pads)."""
    return pair[0] if not isinstance(pair, str) and len(pair) == 2 and pair[0] == pair[1] else pair


def _conv_inputs(imp, node, layout: str):
    """(x, weight, bias, attrs, kernel, stride, dilation, groups) of a Conv or ConvTranspose node;
    layout names the weight's axes for the error message."""
    x = imp.data_input(node)
    weight = imp.weights(node, imp.const_input(node, 1, "weight"), "weight")
    bias = imp.const_input(node, 2, "bias", optional=True)
    if weight.ndim != 4:
        raise imp.error(node, f"weight of shape {weight.shape} is not 2-D convolution {layout}")
    attrs = imp.attrs(node)
    kernel = _pair(imp, node, attrs, "kernel_shape", weight.shape[2:])
    if kernel != weight.shape[2:]:
        raise imp.error(node, f"kernel_shape {kernel} disagrees with the weight's {weight.shape}")
    return (x, weight, bias, attrs, kernel, _pair(imp, node, attrs, "strides", (1, 1)),
            _pair(imp, node, attrs, "dilations", (1, 1)), int(attrs.get("group", 1)))


def _conv(imp, node) -> None:
    x, weight, bias, attrs, kernel, stride, dilation, groups = _conv_inputs(imp, node, "(F, C/groups, KH, KW)")
    pads = _explicit_pads(imp, node, attrs, x, kernel, stride, dilation)
    if pads[0] == pads[1] and pads[2] == pads[3]:
        padding = (pads[0], pads[2])
    elif stride == (1, 1) and pads == resolve_padding("same", kernel, dilation, stride):
        padding = "same"
    else:
        padding = pads  # (top, bottom, left, right): SAME_LOWER, or SAME_UPPER at a stride above 1
    out_channels, in_per_group = weight.shape[:2]
    layer = Conv2d(in_per_group * groups, out_channels, _short(kernel), stride=_short(stride),
                   padding=_short(padding), dilation=_short(dilation), groups=groups,
                   bias=bias is not None, dtype=weight.dtype)
    layer.params["weight"] = weight.copy()
    if bias is not None:
        layer.params["bias"] = _vector(imp, node, bias, out_channels, "bias").astype(weight.dtype)
    imp.add_layer(node, layer, x)


def _conv_transpose(imp, node) -> None:
    """ConvTranspose with symmetric pads; output_shape becomes the output_padding it implies."""
    x, weight, bias, attrs, kernel, stride, dilation, groups = _conv_inputs(imp, node, "(C_in, C_out/groups, KH, KW)")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise imp.error(node, f"auto_pad {attrs['auto_pad']!r}: numcnn's ConvTranspose2d takes explicit pads")
    pads = tuple(int(p) for p in attrs.get("pads", (0, 0, 0, 0)))  # ONNX: (top, left, bottom, right)
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise imp.error(node, f"asymmetric pads {pads}: numcnn's ConvTranspose2d pads symmetrically")
    output_padding = _pair(imp, node, attrs, "output_padding", (0, 0))
    if "output_shape" in attrs:
        sizes = imp.spatial(x)
        if None in sizes:
            raise imp.error(node, "output_shape with a dynamic input size: give output_padding instead")
        wanted = [int(s) for s in attrs["output_shape"]][-2:]
        output_padding = tuple(wanted[a] - transposed_size(sizes[a], kernel[a], stride[a], pads[a], 0, dilation[a])
                               for a in range(2))
    layer = ConvTranspose2d(weight.shape[0], weight.shape[1] * groups, _short(kernel), stride=_short(stride),
                            padding=_short((pads[0], pads[1])), output_padding=_short(output_padding),
                            groups=groups, bias=bias is not None, dilation=_short(dilation), dtype=weight.dtype)
    layer.params["weight"] = weight.copy()
    if bias is not None:
        layer.params["bias"] = _vector(imp, node, bias, weight.shape[1] * groups, "bias").astype(weight.dtype)
    imp.add_layer(node, layer, x)


def _vector(imp, node, array: np.ndarray, length: int, what: str) -> np.ndarray:
    """A per-output vector given as (L,), (1, L), (L, 1, 1), ... or a scalar, as an (L,) array."""
    if array.size == 1:
        return np.full(length, array.reshape(()).item(), dtype=array.dtype)
    if array.size != length:
        raise imp.error(node, f"{what} of shape {array.shape} does not fit {length} outputs")
    return array.reshape(length).copy()


def _linear(imp, node, x, weight: np.ndarray, bias: np.ndarray | None) -> None:
    """Register Linear(in, out) with weight (out, in) and optional bias."""
    if imp.rank(x) not in (None, 2):
        raise imp.error(node, f"multiplies a {imp.rank(x)}-D tensor; numcnn's Linear takes (N, features)")
    out_features, in_features = weight.shape
    layer = Linear(in_features, out_features, bias=bias is not None, dtype=weight.dtype)
    layer.params["weight"] = np.ascontiguousarray(weight, dtype=weight.dtype)
    if bias is not None:
        layer.params["bias"] = _vector(imp, node, bias, out_features, "bias").astype(weight.dtype)
    imp.add_layer(node, layer, x)


def _gemm(imp, node) -> None:
    x = imp.data_input(node)
    attrs = imp.attrs(node)
    if attrs.get("transA", 0):
        raise imp.error(node, "transA=1 (a transposed data input) is not a Linear layer")
    b = imp.weights(node, imp.const_input(node, 1, "weight (B)"), "weight")
    if b.ndim != 2:
        raise imp.error(node, f"weight of shape {b.shape} is not a matrix")
    weight = b if attrs.get("transB", 0) else b.T        # Linear keeps weight as (out, in)
    weight = weight * b.dtype.type(f32(attrs.get("alpha", 1.0)))
    bias = imp.const_input(node, 2, "bias (C)", optional=True)
    if bias is not None:
        bias = imp.weights(node, bias, "bias") * b.dtype.type(f32(attrs.get("beta", 1.0)))
    _linear(imp, node, x, weight, bias)


def _matmul(imp, node) -> None:
    x = imp.data_input(node)
    w = imp.weights(node, imp.const_input(node, 1, "right operand"), "weight")
    if w.ndim != 2:
        raise imp.error(node, f"right operand of shape {w.shape} is not a matrix")
    _linear(imp, node, x, w.T, None)


def _add(imp, node) -> None:
    a, b = (imp.resolve(n) for n in node.input[:2])
    if a not in imp.const and b not in imp.const:
        imp.producer[node.output[0]] = Op(None, (imp.data_input(node, 0), imp.data_input(node, 1)),
                                           f"node {node.name!r} (Add)")
        return
    x, constant = (a, imp.const[b]) if b in imp.const else (b, imp.const[a])
    op = imp.producer.get(x)
    layer = op.layer if op is not None else None
    # A constant added after a bias-less Linear or Conv is that layer's bias (MatMul + Add).
    if isinstance(layer, (Linear, Conv2d)) and "bias" not in layer.params:
        if isinstance(layer, Linear):
            width, shapes = layer.out_features, ((layer.out_features,), (1, layer.out_features))
        else:
            width = layer.out_channels
            shapes = ((width, 1, 1), (1, width, 1, 1))
        if constant.size == 1 or constant.shape in shapes:
            with_bias = type(layer)(**{**layer.config(), "bias": True})
            with_bias.params["weight"] = layer.params["weight"]
            with_bias.params["bias"] = _vector(imp, node, constant, width, "bias").astype(layer.dtype)
            imp.producer[node.output[0]] = Op(with_bias, op.inputs, f"node {node.name!r} (Add)")
            return
    raise imp.error(node, f"adds a constant of shape {constant.shape}; numcnn takes that only as the "
                          f"bias of a bias-less MatMul, Gemm or Conv")


def _channel_constant(imp, node, x: str) -> np.ndarray:
    """The constant operand (input 1) of a Sub or Div on data x, as a per-channel (C,) vector."""
    if imp.resolve(node.input[0]) in imp.const:
        raise imp.error(node, "the constant is the first operand; numcnn takes (x - mean) / std only")
    constant = imp.weights(node, imp.const_input(node, 1, "constant"), "constant")
    dims = imp.shapes.get(x) or (imp.input_dims if x == imp.input else None)
    rank = imp.rank(x) or 4
    channels = dims[1] if dims is not None and len(dims) > 1 else None
    if constant.size == 1 and channels:
        return np.full(channels, constant.reshape(()).item(), dtype=constant.dtype)
    # Broadcasting aligns axes at the right: x's channel axis is the constant's axis -(rank - 1).
    axis = constant.ndim - (rank - 1)
    if (axis < 0 or constant.size != constant.shape[axis] or constant.size == 1
            or (channels and constant.size != channels)):
        raise imp.error(node, f"a constant of shape {constant.shape} is not one value per channel of a "
                              f"{rank}-D input {dims or ''}")
    return constant.reshape(-1)


def _sub(imp, node) -> None:
    x = imp.data_input(node)
    mean = _channel_constant(imp, node, x)
    imp.add_layer(node, Normalize(mean, np.ones_like(mean), dtype=mean.dtype), x)


def _div(imp, node) -> None:
    x = imp.data_input(node)
    std = _channel_constant(imp, node, x)
    if not np.all(std > 0):
        raise imp.error(node, f"divides by {std.tolist()}; numcnn's Normalize needs positive stds")
    op = imp.producer.get(x)
    # (x - mean) / std: the Sub made a Normalize with std 1, which this Div completes.
    if (isinstance(op.layer if op else None, Normalize) and np.all(op.layer.buffers["std"] == 1)
            and op.layer.num_channels == std.size):
        mean = op.layer.buffers["mean"]
        imp.producer[node.output[0]] = Op(Normalize(mean, std, dtype=mean.dtype), op.inputs,
                                           f"node {node.name!r} (Div)")
        return
    imp.add_layer(node, Normalize(np.zeros_like(std), std, dtype=std.dtype), x)


def _batch_norm(imp, node) -> None:
    x = imp.data_input(node)
    attrs = imp.attrs(node)
    if attrs.get("training_mode", 0):
        raise imp.error(node, "training_mode=1; numcnn imports inference graphs")
    names = ("scale", "bias", "mean", "var")
    scale, bias, mean, var = (imp.weights(node, imp.const_input(node, i, n), n) for i, n in enumerate(names, 1))
    rank = imp.rank(x)
    cls = BatchNorm1d if rank in (2, 3) else BatchNorm2d
    # ONNX's momentum weighs the old running value; PyTorch's the new batch statistics.
    layer = cls(scale.shape[0], eps=f32(attrs.get("epsilon", 1e-5)),
                momentum=f32(1.0 - f32(attrs.get("momentum", 0.9))), dtype=scale.dtype)
    for store, key, value in ((layer.params, "weight", scale), (layer.params, "bias", bias),
                              (layer.buffers, "running_mean", mean), (layer.buffers, "running_var", var)):
        store[key] = _vector(imp, node, value, layer.num_features, key).astype(scale.dtype)
    imp.add_layer(node, layer, x)


def _pool(imp, node) -> None:
    x = imp.data_input(node)
    attrs = imp.attrs(node)
    if "kernel_shape" not in attrs:
        raise imp.error(node, "has no kernel_shape")
    kernel = _pair(imp, node, attrs, "kernel_shape", None)
    stride = _pair(imp, node, attrs, "strides", (1, 1))
    dilation = _pair(imp, node, attrs, "dilations", (1, 1))
    if dilation != (1, 1) and node.op_type != "MaxPool":
        raise imp.error(node, f"dilations {attrs['dilations']}: numcnn's average pooling has no dilation")
    top, bottom, left, right = _explicit_pads(imp, node, attrs, x, kernel, stride, dilation)
    symmetric = top == bottom and left == right and top <= kernel[0] // 2 and left <= kernel[1] // 2
    # PyTorch's pair where it allows one; else each side, as ONNX allows (up to the kernel's reach)
    args = (_short(kernel), _short(stride), _short((top, left)) if symmetric else (top, bottom, left, right))
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    if node.op_type == "MaxPool":
        layer = MaxPool2d(*args, dilation=_short(dilation), ceil_mode=ceil_mode)
    else:
        layer = AvgPool2d(*args, ceil_mode=ceil_mode, count_include_pad=bool(attrs.get("count_include_pad", 0)))
    imp.add_layer(node, layer, x)


def _axis(imp, node, x, axis: int) -> int | None:
    rank = imp.rank(x)
    return axis if axis >= 0 else (axis + rank if rank is not None else None)


def _flatten(imp, node) -> None:
    x = imp.data_input(node)
    axis = _axis(imp, node, x, int(imp.attrs(node).get("axis", 1)))
    if axis != 1:
        raise imp.error(node, f"axis {imp.attrs(node).get('axis')}: numcnn's Flatten keeps axis 0 only")
    imp.add_layer(node, Flatten(), x)


def _reshape(imp, node) -> None:
    """A Reshape to a 2-D shape that keeps the batch axis is a Flatten; nothing else is."""
    x = imp.data_input(node)
    shape = [int(s) for s in imp.const_input(node, 1, "shape").reshape(-1)]
    dims = imp.shapes.get(x)
    features = math.prod(dims[1:]) if dims and all(dims[1:]) else None
    batch = imp.input_dims[0] if imp.input_dims else None
    allow_zero = imp.attrs(node).get("allowzero", 0)
    ok = len(shape) == 2
    if ok:
        n, k = shape
        # Axis 0: copied (0), inferred (-1, then K fixes the features), or the file's fixed batch size.
        ok_n = (n == 0 and not allow_zero) or n == -1 or (n > 0 and batch in (None, n))
        ok_k = (k == -1 and n != -1) or (k > 0 and features in (None, k))
        ok = ok_n and ok_k and (n != -1 or k > 0)
    if not ok:
        raise imp.error(node, f"reshapes to {shape}; numcnn imports only a flatten to (N, features)")
    imp.add_layer(node, Flatten(), x)


def _softmax(imp, node) -> None:
    x = imp.data_input(node)
    # Before opset 13 the default axis was 1 and Softmax flattened everything from the axis on.
    axis = int(imp.attrs(node).get("axis", 1 if imp.opset < 13 else -1))
    rank = imp.rank(x)
    if imp.opset < 13:  # over axes [axis:] flattened together: axis 1 alone only for 2-D input
        ok = axis in (1, -1) and rank in (None, 2)
    else:  # an unknown rank with axis -1 is taken to be the usual (N, classes)
        ok = _axis(imp, node, x, axis) == 1 or (axis == -1 and rank is None)
    if not ok:
        raise imp.error(node, f"softmax over axis {axis} of a {rank}-D tensor; numcnn's Softmax is over axis 1")
    imp.add_layer(node, Softmax(), x)


def _skip(imp, node) -> None:
    """Identity and Dropout compute nothing at inference: their output is their input."""
    imp.alias[node.output[0]] = imp.data_input(node)


def _leaf(cls) -> Callable:
    return lambda imp, node: imp.add_layer(node, cls(), imp.data_input(node))


def _leaky_relu(imp, node) -> None:
    slope = f32(imp.attrs(node).get("alpha", 0.01))
    imp.add_layer(node, LeakyReLU(slope), imp.data_input(node))


CONVERTERS: dict[str, Callable] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "Relu": _leaf(ReLU),
    "LeakyRelu": _leaky_relu,
    "Sigmoid": _leaf(Sigmoid),
    "Tanh": _leaf(Tanh),
    "Softmax": _softmax,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _leaf(GlobalAvgPool2d),
    "GlobalMaxPool": _leaf(GlobalMaxPool2d),
    "BatchNormalization": _batch_norm,
    "Sub": _sub,
    "Div": _div,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Dropout": _skip,
    "Identity": _skip,
}

HINTS = {
    "LogSoftmax": "numcnn has no LogSoftmax layer; export the logits (argmax is unchanged) or use Softmax",
    "Shape": ("shapes computed at run time (what x.view(x.size(0), -1) exports with a dynamic batch) "
              "are not supported; use nn.Flatten or torch.flatten(x, 1)"),
}


# -- ops evaluated at import time when every input is a constant ------------------------------------
def _fold_reshape(imp, node, args):
    array, shape = args[0], [int(s) for s in args[1].reshape(-1)]
    if not imp.attrs(node).get("allowzero", 0):
        shape = [array.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return array.reshape(shape)


def _fold_cast(imp, node, args):
    return args[0].astype(imp.onnx.helper.tensor_dtype_to_np_dtype(imp.attrs(node)["to"]))


CONSTANT_FOLDERS: dict[str, Callable] = {
    "Identity": lambda imp, node, args: args[0],
    "Dropout": lambda imp, node, args: args[0],
    "Transpose": lambda imp, node, args: np.ascontiguousarray(
        np.transpose(args[0], imp.attrs(node).get("perm"))),
    "Reshape": _fold_reshape,
    "Cast": _fold_cast,
}
