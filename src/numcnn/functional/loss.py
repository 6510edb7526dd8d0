"""Losses: softmax cross-entropy and mean squared error, forward and backward side by side.

Each forward returns the mean loss as a 0-d value (a NumPy scalar, or a 0-d CuPy array that
stays on the GPU) plus a cache; backward returns the gradient of that mean with respect to the
prediction, in the prediction's dtype.

On the CPU the labels' range is checked here. On a GPU that check would stop the queue for a
host sync at every call, so the kernel leaves it to its caller, who holds the labels on the host
(``check_labels``; numcnn's Trainer does it for every batch before moving it).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module, on_host
from ..errors import DTypeError, ShapeError
from .validate import check_float_array
from .activation import log_softmax


def check_labels(labels, k: int, op: str = "cross_entropy") -> None:
    """ShapeError unless every integer label lies in [0, k). labels: (N,) ints on the host
    (float targets pass: they are checked by shape in the kernel)."""
    labels = np.asarray(labels)
    if labels.size and np.issubdtype(labels.dtype, np.integer) and (labels.min() < 0 or labels.max() >= k):
        raise ShapeError(f"{op}: labels must lie in [0, {k}), got values in [{labels.min()}, {labels.max()}]")


def _check_target(target, logits: np.ndarray, op: str) -> np.ndarray:
    """Integer labels (N,) in [0, K), or a float target of the logits' shape (N, K)."""
    xp = get_array_module(logits)
    target = xp.asarray(target)
    n, k = logits.shape
    if np.issubdtype(target.dtype, np.integer):
        if target.shape != (n,):
            raise ShapeError(f"{op}: expected integer labels of shape ({n},), got {target.shape}")
        if on_host(xp):
            check_labels(target, k, op)
        return target
    if np.issubdtype(target.dtype, np.floating):
        if target.shape != (n, k):
            raise ShapeError(f"{op}: expected a probability target of shape {(n, k)}, got {target.shape}")
        return target.astype(logits.dtype, copy=False)
    raise DTypeError(f"{op}: expected integer labels or float targets, got dtype {target.dtype}")


def cross_entropy_forward(logits, target):
    """Mean softmax cross-entropy over the batch, stable for logits of any size.

    Parameters
    ----------
    logits : (N, K)
    target : (N,) integer labels, or (N, K) probabilities / one-hot rows

    Returns
    -------
    loss (a 0-d value in logits' dtype: a NumPy scalar, or a 0-d CuPy array that
        stays on the GPU until ``float(loss)`` asks for it), cache for ``cross_entropy_backward``
    """
    xp = get_array_module(logits)
    logits = check_float_array(logits, "cross_entropy", 2, what="logits")
    target = _check_target(target, logits, "cross_entropy")
    n = logits.shape[0]
    if n == 0:
        raise ShapeError("cross_entropy: got an empty batch")
    logp = log_softmax(logits, axis=1)
    if target.ndim == 1:
        loss = -logp[xp.arange(n), target].sum() / n
    else:
        loss = -(target * logp).sum() / n
    return loss, (logp, target)


def cross_entropy_backward(cache, dloss=1.0):
    """d(mean loss)/d logits = (softmax * sum(target) - target) / N; (N, K)."""
    logp, target = cache
    xp = get_array_module(logp)
    n = logp.shape[0]
    grad = xp.exp(logp)
    if target.ndim == 1:
        grad[xp.arange(n), target] -= 1
    else:
        grad = grad * target.sum(axis=1, keepdims=True) - target
    grad *= logp.dtype.type(dloss / n)
    return grad


def cross_entropy(logits, target):
    """Mean softmax cross-entropy; see ``cross_entropy_forward``."""
    return cross_entropy_forward(logits, target)[0]


def mse_forward(pred, target):
    """Mean squared error over all elements.

    Parameters
    ----------
    pred, target : (...) of the same shape

    Returns
    -------
    loss (0-d, as ``cross_entropy_forward``'s), cache
    """
    pred = check_float_array(pred, "mse_loss", what="prediction")
    target = check_float_array(target, "mse_loss", what="target")
    if pred.shape != target.shape:
        raise ShapeError(f"mse_loss: prediction {pred.shape} and target {target.shape} differ in shape")
    if pred.size == 0:
        raise ShapeError("mse_loss: got an empty prediction")
    diff = pred - target.astype(pred.dtype, copy=False)
    return (diff * diff).mean(), diff


def mse_backward(cache, dloss=1.0):
    """d(mean loss)/d pred = 2 * (pred - target) / size; same shape as pred."""
    diff = cache
    return diff * diff.dtype.type(2 * dloss / diff.size)


def mse_loss(pred, target):
    """Mean squared error; see ``mse_forward``."""
    return mse_forward(pred, target)[0]
