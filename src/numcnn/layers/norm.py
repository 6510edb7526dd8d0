"""Batch normalisation layers."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..functional.norm import batch_norm_backward, batch_norm_forward
from .activation import FusesReLU
from .base import Layer, backward_before_forward, check_dout, check_input, errors_named, register_layer


class BatchNorm(FusesReLU, Layer):
    """The base of BatchNorm1d and BatchNorm2d (``isinstance(layer, BatchNorm)`` finds both).

    Train mode normalises with the batch statistics and updates the running ones; eval mode
    normalises with the running statistics. ``reduce`` (None) may be set to a callable that sums
    the statistics over other processes' batches (see ``functional.batch_norm_forward``): that
    is sync batch norm, and the layer is otherwise unchanged (same state dict, same file).

    Parameters
    ----------
    num_features : int
        C, the channels (or features) of an (N, C, ...) input.
    eps : float, default 1e-5
        Added to the variance before its square root.
    momentum : float or None, default 0.1
        The weight of each batch's statistics in the running ones; None for a cumulative average.
    dtype : dtype, default float32
        The parameters' and buffers' dtype.

    Attributes
    ----------
    params : dict of str to ndarray
        ``weight`` (ones) and ``bias`` (zeros), each shape (C,).
    buffers : dict of str to ndarray
        ``running_mean`` and ``running_var``, each shape (C,), and ``num_batches_tracked``.
    """

    ranks: tuple[int, ...] = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ConfigError(f"{type(self).__name__}: num_features must be a positive int, got {num_features!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"{type(self).__name__}: momentum must lie in [0, 1] or be None, got {momentum!r}")
        if not eps > 0:
            raise ConfigError(f"{type(self).__name__}: eps must be > 0, got {eps!r}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.dtype = np.dtype(dtype)
        self.params["weight"] = np.ones(num_features, self.dtype)
        self.params["bias"] = np.zeros(num_features, self.dtype)
        self.buffers["running_mean"] = np.zeros(num_features, self.dtype)
        self.buffers["running_var"] = np.ones(num_features, self.dtype)
        self.buffers["num_batches_tracked"] = np.zeros((), np.int64)
        self._cache = None
        self.reduce = None

    def _forward(self, x, relu):
        """Normalise x; with relu, each piece of the output takes max(., 0) too, while in cache."""
        name = type(self).__name__
        x = check_input(x, name, self.ranks, self.num_features)
        if self.training:
            self.buffers["num_batches_tracked"] += 1
        with errors_named(name):
            out, self._cache, running = batch_norm_forward(
                x, self.params["weight"], self.params["bias"], self.buffers["running_mean"],
                self.buffers["running_var"], self.training, self.momentum, self.eps,
                self.buffers["num_batches_tracked"], self.reduce, relu)
        self.buffers["running_mean"], self.buffers["running_var"] = running
        return out

    def backward(self, dout):
        name = type(self).__name__
        if self._cache is None:
            raise backward_before_forward(name)
        dout = check_dout(dout, name, self._cache[0].shape)
        dx, self.grads["weight"], self.grads["bias"] = batch_norm_backward(dout, self._cache)
        return dx

    def config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "dtype": self.dtype.name}


@register_layer
class BatchNorm1d(BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input, per feature C.

    Parameters
    ----------
    num_features, eps, momentum, dtype
        As ``BatchNorm`` takes them.
    """

    ranks = (2, 3)


@register_layer
class BatchNorm2d(BatchNorm):
    """Batch norm over (N, C, H, W) input, per channel C.

    Parameters
    ----------
    num_features, eps, momentum, dtype
        As ``BatchNorm`` takes them.
    """

    ranks = (4,)
