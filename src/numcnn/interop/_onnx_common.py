"""What both ONNX directions share: the lazy import, the opset, the padding order, and the
metadata key that carries a model's training record.

ONNX writes 2-D padding as [top, left, bottom, right] (all begins, then all ends); numcnn's
window code uses (top, bottom, left, right). The two converters below are the only place
that knows both orders.
"""

from __future__ import annotations

import json

from ..errors import ModelFileError

OPSET = 17
# The IR version that shipped with opset 17 (onnx 1.12); older runtimes refuse newer IRs.
IR_VERSION = 8
# The model's training record (class names, dataset, dark_background, ...: what ``read_model``
# returns beside the model) travels as JSON under this key of the ONNX ``metadata_props``, so that
# export -> import keeps what ``numcnn predict`` needs to name classes and prepare images.
TRAINING_KEY = "numcnn.training"


def require_onnx():
    """The ``onnx`` module, imported on first use so that ``import numcnn`` never needs it."""
    try:
        import onnx
    except ImportError:
        raise ImportError("numcnn.interop needs the optional 'onnx' package: "
                          "pip install numcnn[onnx]") from None
    return onnx


def onnx_pads(pads: tuple[int, int, int, int]) -> list[int]:
    """numcnn (top, bottom, left, right) -> ONNX [top, left, bottom, right]."""
    top, bottom, left, right = pads
    return [top, left, bottom, right]


def numcnn_pads(pads) -> tuple[int, int, int, int]:
    """ONNX [top, left, bottom, right] -> numcnn (top, bottom, left, right)."""
    top, left, bottom, right = (int(p) for p in pads)
    return (top, bottom, left, right)


def training_props(training: dict | None) -> dict[str, str]:
    """The metadata_props entries (key -> string) that carry a training record; {} for none."""
    return {TRAINING_KEY: json.dumps(training, sort_keys=True)} if training else {}


def training_from_props(props, source: str) -> dict:
    """The training record in an ONNX file's metadata_props (a list of key/value entries), or {}
    when it has none (a file from another tool); a record that is not a JSON object is a
    ModelFileError."""
    raw = next((entry.value for entry in props if entry.key == TRAINING_KEY), None)
    if raw is None:
        return {}
    try:
        training = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{source}: metadata {TRAINING_KEY!r} is not valid JSON ({exc})") from None
    if not isinstance(training, dict):
        raise ModelFileError(f"{source}: metadata {TRAINING_KEY!r} must be a JSON object, "
                             f"got {type(training).__name__}")
    return training
