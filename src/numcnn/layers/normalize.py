"""Normalize: per-channel standardisation, stored in the model so a saved model needs no side data."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functional.validate import check_same_device
from .base import Layer, backward_before_forward, check_dout, check_input, register_layer


@register_layer
class Normalize(Layer):
    """y = (x - mean[c]) / std[c] for every channel c, as torchvision's ``Normalize`` does.

    Maps an (N, C, ...) float input in [0, 1] to an output of the same shape and dtype. The
    recipe makes this the first layer, with the training set's statistics.

    Parameters
    ----------
    mean, std : sequence of float, shape (C,)
        One mean and one (positive) standard deviation per channel. Kept as buffers (saved
        with the model, never trained), so every place that runs the model (evaluate,
        predict, ONNX, a PyTorch twin) standardises alike.
    dtype : dtype, default float32
        The buffers' dtype.
    """

    def __init__(self, mean, std, dtype=np.float32):
        super().__init__()
        self.dtype = np.dtype(dtype)
        try:
            mean = np.asarray(mean, dtype=np.float64).reshape(-1)
            std = np.asarray(std, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ConfigError(f"Normalize: expected mean and std as numbers, one per channel, got "
                              f"{mean!r} and {std!r}") from None
        if mean.size == 0 or mean.shape != std.shape:
            raise ConfigError(f"Normalize: expected mean and std of the same length C >= 1, "
                              f"got {mean.size} and {std.size} values")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise ConfigError(f"Normalize: expected finite means and stds > 0, got mean {mean.tolist()}, "
                              f"std {std.tolist()}")
        self.buffers["mean"] = mean.astype(self.dtype)
        self.buffers["std"] = std.astype(self.dtype)
        self._std = None
        self._shape = None  # of the last forward's input

    @property
    def num_channels(self) -> int:
        return self.buffers["mean"].size

    def _per_channel(self, name: str, x: np.ndarray) -> np.ndarray:
        """The buffer as (1, C, 1, ...) in x's dtype, to broadcast over x of any rank >= 2."""
        return self.buffers[name].astype(x.dtype, copy=False).reshape((1, -1) + (1,) * (x.ndim - 2))

    def forward(self, x):
        x = check_input(x, "Normalize", None, self.num_channels)
        check_same_device("Normalize", x, mean=self.buffers["mean"])
        if x.ndim < 2:
            raise ShapeError(f"Normalize: expected (N, C, ...) input, got shape {x.shape}")
        # Keep only std: backward is dout / std.
        self._std = self._per_channel("std", x)
        self._shape = x.shape
        return (x - self._per_channel("mean", x)) / self._std

    def backward(self, dout):
        if self._std is None:
            raise backward_before_forward("Normalize")
        dout = check_dout(dout, "Normalize", self._shape)
        return dout / self._std.astype(dout.dtype, copy=False)

    def config(self):
        # str() of a float32 is its shortest round-trip decimal: 0.4, not 0.4000000059604645.
        return {"mean": [float(str(v)) for v in self.buffers["mean"]],
                "std": [float(str(v)) for v in self.buffers["std"]], "dtype": self.dtype.name}
