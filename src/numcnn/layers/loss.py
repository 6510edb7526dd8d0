"""Loss layers: ``forward(prediction, target) -> loss`` and ``backward() -> d loss / d prediction``.

The loss is a 0-d value of the prediction's array module (a NumPy scalar on the CPU, a 0-d
CuPy array on a GPU, so no host sync happens until ``float(loss)``).
"""

from __future__ import annotations

from ..functional.loss import cross_entropy_backward, cross_entropy_forward, mse_backward, mse_forward
from .base import backward_before_forward, errors_named


class _Loss:
    """Shared plumbing; a loss is not a Layer (it takes two inputs and ends the graph)."""

    _forward = staticmethod(cross_entropy_forward)
    _backward = staticmethod(cross_entropy_backward)

    def __init__(self):
        self._cache = None

    def forward(self, pred, target):
        with errors_named(type(self).__name__):
            loss, self._cache = self._forward(pred, target)
        return loss

    __call__ = forward

    def backward(self, dout: float = 1.0):
        if self._cache is None:
            raise backward_before_forward(type(self).__name__)
        return self._backward(self._cache, dout)

    def __repr__(self):
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(_Loss):
    """Mean softmax cross-entropy on logits (N, K) with labels (N,) or probabilities (N, K).

    backward() returns d loss / d logits, (N, K).
    """


class MSELoss(_Loss):
    """Mean squared error between a prediction and a target of the same shape."""

    _forward = staticmethod(mse_forward)
    _backward = staticmethod(mse_backward)
