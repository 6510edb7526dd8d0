"""Per-channel statistics of an image set: what ``Normalize`` needs, without a float copy."""

from __future__ import annotations

import numpy as np

from ..errors import DataError, ShapeError

_CHUNK = 4096  # images per pass over a float set: bounded memory at any size


def channel_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation of every channel, on the [0, 1] scale.

    For uint8, the counts of the 256 values per channel give both moments exactly; floats are
    summed in float64, a chunk of images at a time.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        uint8 pixels (0..255, taken as /255) or floats in [0, 1].

    Returns
    -------
    mean, std : ndarray, shape (C,)
        float64. A constant channel gets std 1, so dividing by it is harmless.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ShapeError(f"channel_stats: expected images (N, C, H, W), got shape {x.shape}")
    if x.shape[0] == 0 or x[0].size == 0:
        raise DataError(f"channel_stats: got no pixels (shape {x.shape})")
    channels = x.shape[1]
    if x.dtype == np.uint8:
        values = np.arange(256, dtype=np.float64) / 255
        counts = np.stack([np.bincount(x[:, c].reshape(-1), minlength=256) for c in range(channels)])
        total = counts.sum(axis=1)
        mean = counts @ values / total
        var = counts @ values**2 / total - mean**2
    else:
        total = x.shape[0] * x.shape[2] * x.shape[3]
        sums = np.zeros(channels)
        for start in range(0, len(x), _CHUNK):
            sums += x[start:start + _CHUNK].sum(axis=(0, 2, 3), dtype=np.float64)
        mean = sums / total
        squares = np.zeros(channels)
        for start in range(0, len(x), _CHUNK):
            centred = x[start:start + _CHUNK].astype(np.float64) - mean.reshape(1, -1, 1, 1)
            squares += (centred * centred).sum(axis=(0, 2, 3))
        var = squares / total
    std = np.sqrt(np.maximum(var, 0))
    return mean, np.where(std > 1e-6, std, 1.0)
