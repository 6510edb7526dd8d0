"""A trained model applied to data: logits, probabilities, loss and accuracy, a batch at a time,
in eval mode, on the model's device (the data stays on the host; batches travel)."""

from __future__ import annotations

import numpy as np

from .backend import to_device, to_numpy
from .errors import ConfigError, DataError
from .functional.activation import softmax
from .functional.loss import check_labels
from .layers import SoftmaxCrossEntropy

__all__ = ["batched_logits", "evaluate", "predict_proba", "to_model_device", "count_correct"]


def count_correct(logits: np.ndarray, y: np.ndarray):
    """Correct predictions in a batch, as a 0-d count where the logits are (no host sync on a
    GPU); y is labels (N,) or one-hot / probability rows (N, K)."""
    target = y if y.ndim == 1 else y.argmax(axis=1)
    return (logits.argmax(axis=1) == target).sum()


def to_model_device(model, xb, yb=None):
    """A batch where the model is: images (B, C, H, W) moved as stored (uint8 stays uint8 until
    it arrives), then made float in [0, 1] there; labels (B,) or targets (B, K) moved as they are."""
    from .data.loader import as_float_images

    device = model.device
    xb = as_float_images(to_device(xb, device))
    return xb if yb is None else (xb, to_device(yb, device))


def batched_logits(model, x, batch_size: int = 500):
    """Yield (slice, logits) over x, batch_size samples at a time, in eval mode.

    Each batch is moved to the model's device; the logits (B, K) are on that device.
    The model's previous mode is restored when the loop ends (or is abandoned), and memory stays
    bounded by one batch's activations whatever len(x) is.

    Parameters
    ----------
    model : Layer
        The model; its ``forward`` maps (B, C, H, W) to (B, K).
    x : ndarray, shape (N, C, H, W)
        Floats, or uint8 pixels scaled to float32 in [0, 1] a batch at a time.
    batch_size : int, default 500
        The samples per forward.

    Yields
    ------
    part : slice
        The samples of x this batch holds.
    logits : ndarray, shape (B, K)
        Their logits.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}")
    with model.evaluating():
        for start in range(0, len(x), batch_size):
            part = slice(start, start + batch_size)
            yield part, model.forward(to_model_device(model, x[part]))


def evaluate(model, x, y, loss=None, batch_size: int = 500) -> dict[str, float]:
    """Mean loss and accuracy over (x, y) in eval mode, batch_size samples at a time.

    Parameters
    ----------
    model : Layer
        The model, mapping (B, C, H, W) to (B, K) logits.
    x : ndarray, shape (N, C, H, W)
        Floats or uint8 pixels.
    y : ndarray, shape (N,) or (N, K)
        Labels, or targets.
    loss : SoftmaxCrossEntropy or MSELoss, optional
        The loss layer; default ``SoftmaxCrossEntropy()``.
    batch_size : int, default 500
        The samples per forward.

    Returns
    -------
    dict
        {"loss": float, "accuracy": float}.
    """
    loss = loss if loss is not None else SoftmaxCrossEntropy()
    x, y = to_numpy(x), to_numpy(y)  # the data stays on the host; batches go to the model
    if len(x) == 0 or len(x) != len(y):
        raise DataError(f"evaluate: expected x and y with the same, non-zero number of samples, "
                        f"got shapes {x.shape} and {y.shape}")
    loss_sum, correct = 0.0, 0
    for part, logits in batched_logits(model, x, batch_size):
        yb = to_device(y[part], model.device)
        if model.device != "cpu":  # on a GPU the loss kernel leaves the labels' check to us
            check_labels(y[part], logits.shape[-1], type(loss).__name__)
        loss_sum += float(loss.forward(logits, yb)) * len(logits)
        correct = correct + count_correct(logits, yb)
    return {"loss": loss_sum / len(x), "accuracy": int(correct) / len(x)}


def predict_proba(model, x, batch_size: int = 500) -> np.ndarray:
    """Softmax probabilities (N, K) of a model's logits, in eval mode and batch_size at a time.

    x: (N, C, H, W) floats or uint8 pixels, on the host (or the GPU: then copied to the host first)."""
    x = to_numpy(x)
    if len(x) == 0:
        raise DataError("predict: got no samples")
    return np.concatenate([to_numpy(softmax(logits, axis=1)) for _, logits in batched_logits(model, x, batch_size)])
