"""Inverted dropout."""

from __future__ import annotations

import numbers

import numpy as np

from .. import init
from ..errors import ConfigError
from ..functional.dropout import dropout_backward, dropout_forward
from .base import Layer, backward_before_forward, check_dout, check_input, register_layer


@register_layer
class Dropout(Layer):
    """Zero each element with probability p in training, scaling the rest by 1/(1-p).

    Scaling at training time (inverted dropout) makes eval mode the identity. Each forward
    draws one 64-bit key from the layer's own generator ``self.rng`` (seeded by ``seed``, else
    from numcnn's default generator, ``numcnn.manual_seed``), and the mask is a hash of that key
    and each element's position, computed where x lives (``functional.dropout_forward``): the
    same mask on the CPU and on a GPU, and runs are reproducible. Any shape in, same shape out:
    (N, ...) -> (N, ...).

    Parameters
    ----------
    p : float, default 0.5
        The probability of zeroing an element, in [0, 1].
    seed : int or None, default None
        Seeds the layer's generator; None draws the seed from numcnn's default generator.
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ConfigError(f"Dropout: p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng(init.default_rng().integers(2**63) if seed is None else seed)
        self._mask = None
        self._shape = None  # of the last forward's input

    def forward(self, x):
        x = check_input(x, "Dropout")
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        out, self._mask = dropout_forward(x, self.p, int(self.rng.integers(2**63)))
        return out

    def backward(self, dout):
        if self._shape is None:
            raise backward_before_forward("Dropout")
        dout = check_dout(dout, "Dropout", self._shape)
        if self._mask is None:  # forward was the identity (eval mode, or p = 0)
            return dout
        return dropout_backward(dout, self._mask)

    def config(self):
        return {"p": self.p}
