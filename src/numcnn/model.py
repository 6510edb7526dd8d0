"""Containers (Sequential, Residual), state dicts, save/load and summary.

State-dict keys follow PyTorch: a child's index, a dot, the array's name ("0.weight",
"1.running_mean", "3.0.bias" inside a nested container), so a ``torch.nn.Sequential`` of the
same structure exchanges weights with ours directly. A saved model is one .npz: the arrays under
those keys plus the architecture as JSON; it is read back with ``allow_pickle=False``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Iterable

import numpy as np

from . import rundir
from .backend import device_of, host_copy, is_array, to_device, to_numpy
from .errors import ConfigError, ModelFileError, NumcnnError, ShapeError
from .functional import activation
from .io import atomic_savez, read_npz
from .layers.activation import FusesReLU
from .layers.base import LAYER_REGISTRY, Layer, register_layer

__all__ = ["Sequential", "Residual", "state_dict", "load_state_dict", "to_config", "from_config", "save", "load",
           "read_model", "model_from_arrays", "summary"]

FORMAT = "numcnn-model"
FORMAT_VERSION = 1


@register_layer
class Sequential(Layer):
    """Layers applied in order: forward left to right, backward right to left.

    ``input_shape`` (C, H, W), optional, is remembered for summaries and exports.
    """

    def __init__(self, *layers: Layer, input_shape: Iterable[int] | None = None):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ConfigError(f"{type(self).__name__}: item {i} is a {type(layer).__name__}, not a numcnn Layer")
        self.layers = list(layers)
        self.input_shape = _checked_input_shape(type(self).__name__, input_shape)
        self._fused: set[int] = set()  # layers the last forward ran through the one before them

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def forward(self, x):
        """Each layer in turn; a layer that ``fuses`` the next one runs both (a Conv2d, a batch norm
        or a Residual block and the ReLU after it)."""
        layers, fused = self.layers, set()
        for i, layer in enumerate(layers):
            if i in fused:
                continue
            if i + 1 < len(layers) and layer.fuses(layers[i + 1]):
                fused.add(i + 1)
                x = layer.forward_fused(x, layers[i + 1])
            else:
                x = layer.forward(x)
        self._fused = fused
        return x

    def _backward_through(self, start: int, dout):
        """dout back through layers[start:], right to left: the gradient at layers[start]'s input."""
        for i in reversed(range(start, len(self.layers))):
            if i not in self._fused:  # a fused layer's backward ran within the one before it
                dout = self.layers[i].backward(dout)
        return dout

    def backward(self, dout):
        return self._backward_through(0, dout)

    def backward_params(self, dout):
        """Backward without the input's gradient: layers before the first one with parameters
        are skipped, and that one computes only its own gradients (what training needs)."""
        trainable = [i for i, layer in enumerate(self.layers) if layer.has_params()]
        if not trainable:
            return
        self.layers[trainable[0]].backward_params(self._backward_through(trainable[0] + 1, dout))

    def append(self, layer: Layer) -> "Sequential":
        self.layers.append(layer)
        return self

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def config(self):
        return {"input_shape": list(self.input_shape)} if self.input_shape else {}

    def __repr__(self):
        lines = [f"  ({name}): {layer!r}".replace("\n", "\n  ") for name, layer in self.children()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)" if lines else f"{type(self).__name__}()"

    # -- weights -------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Every param and buffer by PyTorch-style dotted key, as NumPy copies (safe to keep,
        and on the host whatever device the model is on)."""
        return state_dict(self)

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        load_state_dict(self, state, strict)

    # -- files ---------------------------------------------------------------------------------
    def save(self, path) -> str:
        """Write architecture and weights to one .npz (atomically); returns the path written."""
        return str(save(self, path))

    def summary(self, input_shape: Iterable[int] | None = None, dtype=np.float32) -> str:
        return summary(self, input_shape, dtype)


@register_layer
class Residual(FusesReLU, Sequential):
    """y = x + f(x), with f the layers given (a ResNet block); an optional ``shortcut`` layer
    replaces the identity on the skip path (e.g. a 1x1 Conv2d when channels change).

    Backward sends dout down both paths and adds the two input gradients. A ReLU right after the
    block (as in ResNet) is fused in: taken in place on the sum, no array of its own.
    """

    def __init__(self, *layers: Layer, shortcut: Layer | None = None):
        super().__init__(*layers)
        self.shortcut = shortcut
        self._relu_out = None  # the sum after a fused ReLU, for its gradient

    def children(self):
        kids = super().children()
        return kids + [("shortcut", self.shortcut)] if self.shortcut is not None else kids

    def _forward(self, x, relu):
        body = Sequential.forward(self, x)
        skip = self.shortcut.forward(x) if self.shortcut is not None else x
        if body.shape != skip.shape:
            raise ShapeError(f"Residual: the block maps {x.shape} to {body.shape}, which cannot be added to "
                             f"the skip path's {skip.shape}; give a shortcut layer that matches them")
        out = body + skip
        self._relu_out = activation.relu_(out) if relu else None
        return out

    def _unfused(self, dout):
        """dout back through the fused ReLU, if the last forward had one."""
        return dout if self._relu_out is None else activation.relu_backward(dout, self._relu_out)

    def backward(self, dout):
        dout = self._unfused(dout)
        dx = super().backward(dout)
        return dx + (self.shortcut.backward(dout) if self.shortcut is not None else dout)

    def backward_params(self, dout):
        dout = self._unfused(dout)
        super().backward_params(dout)
        if self.shortcut is not None:  # the identity path has nothing to train
            self.shortcut.backward_params(dout)

    def config(self):
        return {}


# -- state dicts ------------------------------------------------------------------------------
def _arrays(model: Layer):
    """(key, owner dict, name) for every param and buffer, params first within each layer."""
    for prefix, layer in model.named_layers():
        for store in (layer.params, layer.buffers):
            for name in store:
                yield (f"{prefix}.{name}" if prefix else name), store, name


def state_dict(model: Layer) -> "OrderedDict[str, np.ndarray]":
    return OrderedDict((key, host_copy(store[name])) for key, store, name in _arrays(model))


def _as_numpy(value: Any, key: str) -> np.ndarray:
    """Accept ndarrays and anything array-like (a CPU torch tensor included, via duck typing)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    elif is_array(value):
        value = to_numpy(value)  # a CuPy array is copied to the host; NumPy refuses it
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise ModelFileError(f"state dict entry {key!r}: cannot be read as an array ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise ModelFileError(f"state dict entry {key!r}: expected a numeric array, got dtype {array.dtype}")
    return array


def load_state_dict(model: Layer, state: dict[str, Any], strict: bool = True) -> None:
    """Copy arrays into the model's params and buffers, checked before anything is changed.

    Values are cast to each param's own dtype; shapes must match exactly.

    Parameters
    ----------
    model : Layer
        The model to load into.
    state : dict of str to array_like
        key -> array, as ``state_dict`` gives or ``torch_model.state_dict()`` converted to NumPy.
    strict : bool, default True
        Unknown or missing keys are errors (ModelFileError).
    """
    if not isinstance(state, dict):
        raise ModelFileError(f"expected a state dict (a mapping of names to arrays), got {type(state).__name__}")
    targets = {key: (store, name) for key, store, name in _arrays(model)}
    missing = [k for k in targets if k not in state]
    unexpected = [k for k in state if k not in targets]
    if strict and (missing or unexpected):
        raise ModelFileError("state dict does not fit the model: "
                             + "; ".join(part for part in (
                                 f"missing keys {missing}" if missing else "",
                                 f"unexpected keys {unexpected}" if unexpected else "") if part))
    staged = []
    for key, (store, name) in targets.items():
        if key not in state:
            continue
        value = _as_numpy(state[key], key)
        current = store[name]
        if value.shape != current.shape:
            raise ModelFileError(f"state dict entry {key!r}: expected shape {current.shape}, got {value.shape}")
        if (current.dtype.kind == "f") != (value.dtype.kind == "f"):
            raise ModelFileError(f"state dict entry {key!r}: expected {'a float' if current.dtype.kind == 'f' else 'an integer'} "
                                 f"array like {current.dtype}, got dtype {value.dtype}")
        if current.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ModelFileError(f"state dict entry {key!r}: contains NaN or infinite values")
        staged.append((store, name, to_device(value.astype(current.dtype), device_of(current))))
    for store, name, value in staged:
        store[name] = value


# -- architecture as JSON -------------------------------------------------------------------------
def to_config(layer: Layer) -> dict[str, Any]:
    """A JSON-friendly description of the layer tree (types and constructor arguments)."""
    entry: dict[str, Any] = {"type": type(layer).__name__, "config": layer.config()}
    if isinstance(layer, Sequential):
        entry["layers"] = [to_config(child) for child in layer.layers]
        if isinstance(layer, Residual) and layer.shortcut is not None:
            entry["shortcut"] = to_config(layer.shortcut)
    return entry


# The most elements one sample may have: a larger input_shape is a corrupt file or a typo.
MAX_SAMPLE_ELEMENTS = 1 << 31


def _checked_input_shape(owner: str, input_shape) -> tuple[int, ...] | None:
    """input_shape as a tuple of positive ints (one sample's shape, at most MAX_SAMPLE_ELEMENTS
    in all), or None; a ConfigError naming what it got otherwise."""
    if input_shape is None:
        return None
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if (shape is None or not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                                          for s in shape) or math.prod(int(s) for s in shape) > MAX_SAMPLE_ELEMENTS):
        raise ConfigError(f"{owner}: input_shape must be one sample's shape, positive ints such as (C, H, W) "
                          f"(at most {MAX_SAMPLE_ELEMENTS} elements), got {input_shape!r:.80}")
    return tuple(int(s) for s in shape)


def from_config(entry: Any, where: str = "architecture") -> Layer:
    """Rebuild a layer tree from ``to_config`` output; unknown or malformed entries raise ModelFileError."""
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise ModelFileError(f"{where}: expected an object with a 'type', got {entry!r:.80}")
    cls = LAYER_REGISTRY.get(entry["type"])
    if cls is None:
        raise ModelFileError(f"{where}: unknown layer type {entry['type']!r}; known: {sorted(LAYER_REGISTRY)}")
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise ModelFileError(f"{where}: 'config' of {entry['type']} must be an object")
    try:
        if issubclass(cls, Sequential):
            children = entry.get("layers", [])
            if not isinstance(children, list):
                raise ModelFileError(f"{where}: 'layers' of {entry['type']} must be a list")
            layers = [from_config(child, f"{where}.{i}") for i, child in enumerate(children)]
            if issubclass(cls, Residual):
                shortcut = entry.get("shortcut")
                return cls(*layers, shortcut=from_config(shortcut, f"{where}.shortcut") if shortcut else None)
            return cls(*layers, **config)
        return cls(**config)
    except NumcnnError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{where}: cannot build {entry['type']}: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"{where}: bad arguments for {entry['type']}: {exc}") from None


# -- files -------------------------------------------------------------------------------------
def save(model: Layer, path, extra_meta: dict | None = None):
    """One .npz with the state dict and {"format", "version", "architecture"} as JSON."""
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "architecture": to_config(model)}
    meta.update(extra_meta or {})
    return atomic_savez(path, state_dict(model), meta)


def model_from_arrays(arrays: dict[str, np.ndarray], meta: dict, path) -> Layer:
    """Rebuild a model from what ``read_npz`` returned, checking the format and every array."""
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a numcnn model (format {meta.get('format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {meta.get('version')!r}; this numcnn reads {FORMAT_VERSION}")
    model = from_config(meta.get("architecture"))
    try:
        load_state_dict(model, arrays)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return model


def read_model(path) -> tuple[Layer, dict]:
    """(model, training record) from a model .npz, or from the model.npz inside a run folder.

    The training record is the run's settings as the Trainer saved them (model name, dataset,
    epochs done, ...), or {} for a model saved without one. Architecture and every weight are
    checked; a bad file is a ModelFileError.
    """
    path = rundir.model_path(path)
    arrays, meta = read_npz(path)
    training = meta.get("training")
    return model_from_arrays(arrays, meta, path), (training if isinstance(training, dict) else {})


def load(path) -> Layer:
    """Read a model written by ``save`` (a .npz, or a run folder holding model.npz)."""
    return read_model(path)[0]


def summary(model: Layer, input_shape: Iterable[int] | None = None, dtype=np.float32) -> str:
    """A table of layers, output shapes and parameter counts.

    Output shapes come from one forward pass of a zero batch of size 1 (in eval mode).

    Parameters
    ----------
    model : Layer
        The model to describe.
    input_shape : iterable of int, optional
        (C, H, W) of one sample; defaults to the model's ``input_shape``.
    dtype : dtype, default float32
        The dtype of the zero batch.

    Returns
    -------
    str
        The table, one line per layer.
    """
    input_shape = input_shape or getattr(model, "input_shape", None)
    rows = []
    layers = model.layers if isinstance(model, Sequential) else [model]
    x = to_device(np.zeros((1, *input_shape), dtype=dtype), model.device) if input_shape else None
    with model.evaluating():
        for i, layer in enumerate(layers):
            shape = "?"
            if x is not None:
                x = layer.forward(x)
                shape = str(("N",) + tuple(x.shape[1:])).replace("'", "")
            rows.append((f"{i}", type(layer).__name__, shape, layer.num_params()))
    header = ("#", "layer", "output shape", "params")
    widths = [max(len(str(r[c])) for r in rows + [header]) for c in range(4)]
    line = "  ".join("{:<%d}" % w for w in widths[:3]) + "  {:>%d}" % widths[3]
    out = [line.format(*header), "-" * (sum(widths) + 6)]
    out += [line.format(*map(str, r)) for r in rows]
    out.append("-" * (sum(widths) + 6))
    total = model.num_params()
    out.append(f"total params: {total:,}" + (f"   input: {tuple(input_shape)}" if input_shape else ""))
    return "\n".join(out)
