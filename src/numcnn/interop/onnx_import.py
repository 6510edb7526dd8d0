"""ONNX -> numcnn: rebuild a Sequential (with Residual blocks) from an ONNX inference graph.

The graph must be a chain of single-input ops, plus Adds of two computed tensors, which become
Residual blocks. Weights come from initializers or Constant nodes; ops whose inputs are all
constants (Identity, Transpose, Reshape, Cast: what PyTorch writes around weights when
constant folding is off) are evaluated once, here, with NumPy.

::

    ONNX op                          numcnn layer       accepted when
    ------------------------------   ----------------   --------------------------------------
    Conv                             Conv2d             2-D; symmetric pads, or the PyTorch
                                                        'same' split (extra at bottom/right)
    Gemm                             Linear             transA=0; transB 0 or 1; alpha, beta
                                                        folded into weight and bias
    MatMul [+ Add of a constant]     Linear             constant (in, out) right operand,
                                                        2-D input; the Add becomes the bias
    Conv (no bias) + Add of (F,1,1)  Conv2d with bias
    Relu, LeakyRelu, Sigmoid, Tanh   ReLU, LeakyReLU, Sigmoid, Tanh
    Softmax                          Softmax            over axis 1 only
    MaxPool, AveragePool             MaxPool2d, AvgPool2d  symmetric pads; ceil_mode; dilations
                                                        (MaxPool)
    GlobalAveragePool, GlobalMaxPool GlobalAvgPool2d, GlobalMaxPool2d
    ConvTranspose                    ConvTranspose2d    symmetric pads; output_padding or output_shape
    BatchNormalization               BatchNorm2d / 1d   by input rank; training_mode=0
    Sub then Div by constants        Normalize          per-channel (1, C, 1, 1), (C, 1, 1) or
                                                        scalar constants; either op alone too
    Flatten                          Flatten            axis=1
    Reshape to [-1, K], [0, -1], ..  Flatten            any 2-D target that keeps the batch axis
    Add of two computed tensors      Residual           see _chain
    Dropout, Identity                (skipped)          the identity at inference

Anything else, LogSoftmax included (numcnn has no LogSoftmax layer), is a ModelFileError that
names the op type and the node. Weights keep float32 or float64; other float types become
float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelFileError, NumcnnError
from ..layers import (AvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, GlobalAvgPool2d,
                      GlobalMaxPool2d, Layer, Linear, MaxPool2d)
from ..model import Residual, Sequential
from ._onnx_common import require_onnx, training_from_props
from .onnx_ops import CONSTANT_FOLDERS, CONVERTERS, HINTS, Op


class Importer:
    """Converts the nodes one by one, then assembles the layers from the graph output back."""

    def __init__(self, proto, source: str):
        self.onnx = require_onnx()
        self.source = source
        graph = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.const: dict[str, np.ndarray] = {}
        for tensor in graph.initializer:
            self.const[tensor.name] = self._to_array(tensor, f"initializer {tensor.name!r}")
        self.alias: dict[str, str] = {}      # Identity/Dropout output -> its input
        self.producer: dict[str, Op] = {}
        self.shapes = self._inferred_shapes(proto)

        inputs = [v for v in graph.input if v.name not in self.const]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ModelFileError(f"{source}: numcnn imports graphs with one data input and one output; this one "
                                 f"has inputs {[v.name for v in inputs]} and outputs {[v.name for v in graph.output]}")
        self.input, self.output = inputs[0].name, graph.output[0].name
        self.input_dims = self._dims(inputs[0])
        self.consumed = {name for node in graph.node for name in node.input} | {self.output}
        self._branches: dict[int, str] = {}
        self._used: set[int] = set()

    # -- reading the graph ---------------------------------------------------------------------
    def _to_array(self, tensor, what: str) -> np.ndarray:
        try:
            return self.onnx.numpy_helper.to_array(tensor)
        except Exception as exc:
            raise ModelFileError(f"{self.source}: {what} cannot be read ({type(exc).__name__}: {exc})") from None

    @staticmethod
    def _dims(value_info) -> tuple[int | None, ...] | None:
        """A value's shape: ints where static, None where symbolic; None if the rank is unknown."""
        tensor = value_info.type.tensor_type
        if not tensor.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)

    def _inferred_shapes(self, proto) -> dict[str, tuple]:
        """Shapes from ONNX shape inference where it succeeds; only ever a help, never required."""
        try:
            inferred = self.onnx.shape_inference.infer_shapes(proto).graph
        except Exception:
            inferred = proto.graph
        shapes = {}
        for value in (*inferred.input, *inferred.value_info, *inferred.output):
            dims = self._dims(value)
            if dims is not None:
                shapes[value.name] = dims
        return shapes

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def error(self, node, message: str) -> ModelFileError:
        name = repr(node.name) if node.name else f"<unnamed, output {node.output[0]!r}>"
        return ModelFileError(f"{self.source}: node {name} ({node.op_type}): {message}")

    def data_input(self, node, i: int = 0) -> str:
        name = self.resolve(node.input[i])
        if name in self.const:
            raise self.error(node, f"input {i} ({name!r}) is a constant where numcnn needs the data tensor")
        if name != self.input and name not in self.producer:
            raise self.error(node, f"input {i} ({name!r}) is not produced by any node numcnn imported")
        return name

    def const_input(self, node, i: int, what: str, optional: bool = False) -> np.ndarray | None:
        if i >= len(node.input) or not node.input[i]:
            if optional:
                return None
            raise self.error(node, f"has no {what} input")
        name = self.resolve(node.input[i])
        if name not in self.const:
            raise self.error(node, f"its {what} ({name!r}) is computed at run time; numcnn needs it "
                                   f"as an initializer or Constant")
        return self.const[name]

    def attrs(self, node) -> dict:
        out = {}
        for attr in node.attribute:
            value = self.onnx.helper.get_attribute_value(attr)
            out[attr.name] = value.decode() if isinstance(value, bytes) else value
        return out

    def weights(self, node, array: np.ndarray, what: str) -> np.ndarray:
        """Float32 and float64 weights keep their dtype; float16/bfloat16 become float32."""
        if array.dtype.kind != "f" and array.dtype.name != "bfloat16":
            raise self.error(node, f"{what} has dtype {array.dtype}; numcnn needs float weights")
        return array if array.dtype in (np.float32, np.float64) else array.astype(np.float32)

    def rank(self, name: str) -> int | None:
        """The rank of a computed tensor: from shape inference, else from the layers that made it."""
        if name in self.shapes:
            return len(self.shapes[name])
        if name == self.input:
            return None if self.input_dims is None else len(self.input_dims)
        op = self.producer.get(name)
        if op is None:
            return None
        if isinstance(op.layer, (Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, GlobalMaxPool2d,
                                 BatchNorm2d)):
            return 4
        if isinstance(op.layer, (Linear, Flatten)):
            return 2
        return self.rank(op.inputs[0])

    def spatial(self, name: str) -> tuple[int | None, int | None]:
        dims = self.shapes.get(name) or (self.input_dims if name == self.input else None)
        return tuple(dims[2:4]) if dims is not None and len(dims) == 4 else (None, None)

    # -- the conversion ----------------------------------------------------------------------------
    def run(self, nodes) -> Sequential:
        for node in nodes:
            self.convert(node)
        output = self.resolve(self.output)
        if output in self.const:
            raise ModelFileError(f"{self.source}: the graph output {self.output!r} is a constant")
        if output != self.input and output not in self.producer:
            raise ModelFileError(f"{self.source}: no node produces the graph output {self.output!r}")
        layers = self._chain(self.input, output)
        dims = self.input_dims
        static = dims is not None and len(dims) > 1 and all(d for d in dims[1:])
        return Sequential(*layers, input_shape=dims[1:] if static else None)

    def convert(self, node) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise self.error(node, f"op {node.domain}.{op} is outside the standard ONNX domain; "
                                   f"numcnn cannot import it")
        if op == "Constant":
            self.const[node.output[0]] = self._constant_value(node)
            return
        data = [self.resolve(n) for n in node.input if n]
        if op in CONSTANT_FOLDERS and data and all(n in self.const for n in data):
            self.const[node.output[0]] = CONSTANT_FOLDERS[op](self, node, [self.const[n] for n in data])
            return
        converter = CONVERTERS.get(op)
        if converter is None:
            hint = HINTS.get(op, "")
            raise self.error(node, f"unsupported ONNX op {op!r}{'; ' + hint if hint else ''} "
                                   f"(numcnn imports {', '.join(sorted(CONVERTERS))})")
        for i, extra in enumerate(node.output[1:], start=1):
            if extra and extra in self.consumed:
                raise self.error(node, f"output {i} ({extra!r}) is used, and numcnn computes only output 0")
        try:
            converter(self, node)
        except ModelFileError:
            raise
        except NumcnnError as exc:  # a layer constructor refused the node's arguments
            raise self.error(node, str(exc)) from None

    def _constant_value(self, node) -> np.ndarray:
        attrs = {a.name: a for a in node.attribute}
        if "value" in attrs:
            return self._to_array(attrs["value"].t, f"Constant {node.name!r}")
        for name, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                            ("value_int", np.int64), ("value_ints", np.int64)):
            if name in attrs:
                return np.array(self.onnx.helper.get_attribute_value(attrs[name]), dtype=dtype)
        raise self.error(node, f"holds a {', '.join(attrs) or 'missing'} value, which numcnn cannot read")

    def add_layer(self, node, layer: Layer, x: str) -> None:
        self.producer[node.output[0]] = Op(layer, (x,), f"node {node.name!r} ({node.op_type})")

    # -- from the output back to the input -----------------------------------------------------------
    def _trunk(self, t: str) -> list[str]:
        """t, then every tensor that all paths from t back to the input pass through, in order.

        A layer's input is on the trunk; for an Add, its branch point is (its two paths
        in between are not).
        """
        trunk = []
        while True:
            trunk.append(t)
            if t == self.input:
                return trunk
            if len(trunk) > len(self.producer) + 1:
                raise ModelFileError(f"{self.source}: the graph has a cycle through {t!r}")
            op = self.producer[t]
            t = op.inputs[0] if op.layer is not None else self._branch(op)

    def _branch(self, op: Op) -> str:
        """Where an Add's two paths split: the latest tensor on both of their trunks."""
        if id(op) not in self._branches:
            other = set(self._trunk(op.inputs[1]))
            self._branches[id(op)] = next(t for t in self._trunk(op.inputs[0]) if t in other)
        return self._branches[id(op)]

    def _chain(self, start: str, end: str) -> list[Layer]:
        """The layers that turn tensor ``start`` into tensor ``end``, Adds folded into Residuals."""
        layers = []
        t = end
        while t != start:
            if t == self.input:
                raise ModelFileError(f"{self.source}: the graph is not a chain of layers with residual "
                                     f"Adds: {start!r} is not on every path to {end!r}")
            op = self.producer[t]
            if id(op) in self._used:
                raise ModelFileError(f"{self.source}: {op.where} would be needed on two paths; numcnn "
                                     f"imports only chains of layers with residual Adds")
            self._used.add(id(op))
            if op.layer is not None:
                layers.append(op.layer)
                t = op.inputs[0]
            else:
                branch = self._branch(op)
                layers.append(self._residual(self._chain(branch, op.inputs[0]),
                                             self._chain(branch, op.inputs[1])))
                t = branch
        return layers[::-1]

    @staticmethod
    def _residual(first: list[Layer], second: list[Layer]) -> Residual:
        """y = first(x) + second(x): the longer path is the body, the shorter the shortcut (the
        second on a tie, as PyTorch's ResNet writes ``out + identity``)."""
        body, skip = (second, first) if len(first) < len(second) else (first, second)
        if not skip:
            return Residual(*body)
        return Residual(*body, shortcut=skip[0] if len(skip) == 1 else Sequential(*skip))


def _read(source):
    """(ModelProto, name for messages) from a path or an already loaded ModelProto."""
    onnx = require_onnx()
    if isinstance(source, onnx.ModelProto):
        return source, "<onnx model>"
    path = Path(source)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    # Protobuf parses many byte strings "successfully" into an empty message.
    if not proto.opset_import or not proto.graph.node or not proto.graph.output:
        raise ModelFileError(f"{path}: not an ONNX model (no graph, opset or output found)")
    return proto, str(path)


def import_onnx(source) -> Sequential:
    """Read an ONNX inference graph into a numcnn Sequential (see the table at the top).

    Files written by ``export_onnx`` and by ``torch.onnx.export(..., dynamo=False)`` of
    nn.Sequential-style CNNs (BatchNorm folded into Conv or not) are covered. Any other op,
    or a graph that is not a chain with residual Adds, is a ModelFileError naming the node.

    Parameters
    ----------
    source : str, path or onnx.ModelProto
        A path to a .onnx file, or an ``onnx.ModelProto``.

    Returns
    -------
    Sequential
        Layers, with Residual blocks for Adds of two computed tensors, in eval mode,
        ``input_shape`` (C, H, W) set when the file's input shape is static. Its forward maps
        (N, C, H, W) to what the graph's output gives, and its state_dict keys are numcnn's
        ("0.weight", ...), not the file's tensor names.
    """
    proto, name = _read(source)
    return Importer(proto, name).run(proto.graph.node).eval()


def read_onnx(source) -> tuple[Sequential, dict]:
    """(model, training record) from an ONNX file: ``import_onnx``'s model, and the training
    record ``export_onnx`` stored in the file's metadata_props ({} for a file without one, such
    as one written by another tool). Save both with ``numcnn.model.save(model, path,
    {"training": record})`` and the .npz reads back as the original did.
    """
    proto, name = _read(source)
    training = training_from_props(proto.metadata_props, name)
    return Importer(proto, name).run(proto.graph.node).eval(), training
