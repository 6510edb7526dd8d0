"""What both ONNX directions share: the lazy import, the opset, and the padding order.

ONNX writes 2-D padding as [top, left, bottom, right] (all begins, then all ends); numcnn's
window code uses (top, bottom, left, right). The two converters below are the only place
that knows both orders.
"""

from __future__ import annotations

OPSET = 17
# The IR version that shipped with opset 17 (onnx 1.12); older runtimes refuse newer IRs.
IR_VERSION = 8


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
