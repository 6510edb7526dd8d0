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
    logits : ndarray, shape (N, K)
        Float scores for K classes.
    target : ndarray, shape (N,) or (N, K)
        Integer labels, or probabilities / one-hot rows.

    Returns
    -------
    loss : scalar
        A 0-d value in logits' dtype: a NumPy scalar, or a 0-d CuPy array that stays on the
        GPU until ``float(loss)`` asks for it.
    cache : tuple
        What ``cross_entropy_backward`` needs.
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
    """d(mean loss)/d logits = dloss * (softmax * sum(target) - target) / N.

    Parameters
    ----------
    cache : tuple
        What ``cross_entropy_forward`` returned beside the loss.
    dloss : float, default 1.0
        The gradient of the loss itself (the chain rule's upstream factor).

    Returns
    -------
    dlogits : ndarray, shape (N, K)
        The gradient of the logits.
    """
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
    """Mean softmax cross-entropy: ``cross_entropy_forward``'s loss without the cache.

    Parameters
    ----------
    logits : ndarray, shape (N, K)
        Float scores for K classes.
    target : ndarray, shape (N,) or (N, K)
        Integer labels, or probabilities / one-hot rows.

    Returns
    -------
    scalar
        The 0-d loss.
    """
    return cross_entropy_forward(logits, target)[0]


def mse_forward(pred, target):
    """Mean squared error over all elements.

    Parameters
    ----------
    pred : ndarray
        Float predictions of any shape, such as (N, K).
    target : ndarray
        pred's shape.

    Returns
    -------
    loss : scalar
        0-d, as ``cross_entropy_forward``'s.
    cache : tuple
        What ``mse_backward`` needs.
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
    """d(mean loss)/d pred = dloss * 2 * (pred - target) / size.

    Parameters
    ----------
    cache : tuple
        What ``mse_forward`` returned beside the loss.
    dloss : float, default 1.0
        The gradient of the loss itself (the chain rule's upstream factor).

    Returns
    -------
    dpred : ndarray
        pred's shape, such as (N, K).
    """
    diff = cache
    return diff * diff.dtype.type(2 * dloss / diff.size)


def mse_loss(pred, target):
    """Mean squared error: ``mse_forward``'s loss without the cache.

    Parameters
    ----------
    pred : ndarray
        Float predictions of any shape, such as (N, K).
    target : ndarray
        pred's shape.

    Returns
    -------
    scalar
        The 0-d loss.
    """
    return mse_forward(pred, target)[0]
