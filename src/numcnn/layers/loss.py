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
        """The loss; keeps what ``backward`` needs.

        Parameters
        ----------
        pred : ndarray, shape (N, K)
            The prediction (logits, for a cross-entropy).
        target : ndarray, shape (N,) or (N, K)
            Labels or target values, as the loss takes them.

        Returns
        -------
        scalar
            A 0-d value of pred's array module and dtype.
        """
        with errors_named(type(self).__name__):
            loss, self._cache = self._forward(pred, target)
        return loss

    __call__ = forward

    def backward(self, dout: float = 1.0):
        """d loss / d pred, of pred's shape.

        Parameters
        ----------
        dout : float, default 1.0
            The gradient of whatever the loss feeds (1 for the loss itself).

        Returns
        -------
        ndarray, shape (N, K)
            The gradient of the last forward's pred.
        """
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
    """Mean squared error between a prediction and a target of the same shape, such as (N, K)."""

    _forward = staticmethod(mse_forward)
    _backward = staticmethod(mse_backward)
