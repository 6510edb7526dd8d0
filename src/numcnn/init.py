"""Weight initialisers.

Every initialiser takes a shape and a dtype and draws from the library's default generator unless
an ``rng`` is given; ``numcnn.manual_seed(s)`` makes model construction reproducible.

Fan-in of a weight of shape (F, C, KH, KW) is C*KH*KW; of a (out, in) matrix it is ``in``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["manual_seed", "default_rng", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "zeros", "ones"]

_default_rng = np.random.default_rng()


def manual_seed(seed: int | None) -> None:
    """Reseed the generator that initialisers (and new Dropout layers) draw from."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)


def default_rng() -> np.random.Generator:
    return _default_rng


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a (out, in, *kernel) weight, as PyTorch computes them."""
    if len(shape) < 2:
        raise ValueError(f"fan-in needs a weight of rank >= 2, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def he_normal(shape, dtype=np.float32, rng=None) -> np.ndarray:
    """Kaiming/He normal for ReLU nets: N(0, 2 / fan_in)."""
    fan_in, _ = _fans(tuple(shape))
    return ((rng or _default_rng).standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)


def he_uniform(shape, dtype=np.float32, rng=None) -> np.ndarray:
    """Kaiming/He uniform: U(-b, b) with b = sqrt(6 / fan_in)."""
    fan_in, _ = _fans(tuple(shape))
    bound = math.sqrt(6.0 / fan_in)
    return (rng or _default_rng).uniform(-bound, bound, shape).astype(dtype)


def xavier_normal(shape, dtype=np.float32, rng=None) -> np.ndarray:
    """Glorot/Xavier normal for sigmoid/tanh nets: N(0, 2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tuple(shape))
    return ((rng or _default_rng).standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def xavier_uniform(shape, dtype=np.float32, rng=None) -> np.ndarray:
    """Glorot/Xavier uniform: U(-b, b) with b = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tuple(shape))
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return (rng or _default_rng).uniform(-bound, bound, shape).astype(dtype)


def zeros(shape, dtype=np.float32, rng=None) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype=np.float32, rng=None) -> np.ndarray:
    return np.ones(shape, dtype=dtype)
