"""Inverted dropout."""

from __future__ import annotations

import numpy as np

from .. import init
from ..errors import ConfigError
from .base import Layer, backward_before_forward, check_input, register_layer


@register_layer
class Dropout(Layer):
    """Zero each element with probability p in training, scaling the rest by 1/(1-p).

    Scaling at training time (inverted dropout) makes eval mode the identity. The mask comes
    from the layer's own generator ``self.rng``: seeded by ``seed``, else drawn from numcnn's
    default generator (``numcnn.manual_seed``), so runs are reproducible. ``rng`` may be
    replaced by any object with ``random(shape, dtype=...)`` (``Layer.seed`` does that for a
    whole model, e.g. with a generator on the arrays' device). Any shape in, same shape out.
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ConfigError(f"Dropout: p must lie in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng(init.default_rng().integers(2**63) if seed is None else seed)
        self._mask = None

    def forward(self, x):
        x = check_input(x, "Dropout")
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype if x.dtype in (np.float32, np.float64) else np.float64) >= self.p
        scale = x.dtype.type(0 if self.p == 1.0 else 1.0 / (1.0 - self.p))
        self._mask = keep.astype(x.dtype) * scale
        return x * self._mask

    def backward(self, dout):
        dout = check_input(dout, "Dropout")
        if not self.training or self.p == 0.0:
            return dout
        if self._mask is None:
            raise backward_before_forward("Dropout")
        return dout * self._mask

    def config(self):
        return {"p": self.p}
