"""Inverted dropout, with masks that come out the same on every device.

The mask is not drawn from a stateful generator on the device: each element's uniform number
is a hash (SplitMix64's finaliser) of a 64-bit key and the element's index. Integer arithmetic
modulo 2**64 is exact in NumPy and CuPy alike, so one key gives one mask on the CPU and on a
GPU, and the only state to checkpoint is the host generator that draws one key per forward.
PyTorch's CUDA dropout is counter-based (Philox) for the same reason.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module, on_host
from ..errors import ConfigError
from ..runtime import each_share
from .validate import check_float_array

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = ((np.uint64(30), np.uint64(0xBF58476D1CE4E5B9)), (np.uint64(27), np.uint64(0x94D049BB133111EB)),
        (np.uint64(31), None))  # SplitMix64's finaliser: xor-shift, multiply, twice, then xor-shift
_HOST_BLOCK = 1 << 14  # elements per pass on the CPU: the uint64 scratch stays in cache


def hash_uniform(shape, key: int, dtype=np.float32, xp=np):
    """Uniform numbers in [0, 1), a pure function of (key, position).

    On the CPU the work goes in cache-sized blocks over numcnn's threads; the numbers do not
    depend on the cut, as each one is a function of its own position.

    Parameters
    ----------
    shape : tuple of int
        The output's shape, such as (N, C, H, W).
    key : int
        An int in [0, 2**64) choosing the numbers.
    dtype : dtype, default float32
        float32 (24-bit numbers) or float64 (53-bit).
    xp : module, optional
        numpy (the default) or cupy: where the numbers are made.

    Returns
    -------
    ndarray
        Of that shape and dtype, on xp's device.
    """
    n = int(np.prod(shape, dtype=np.int64))
    dtype = np.dtype(dtype)
    bits = 24 if dtype == np.float32 else 53
    out = xp.empty(n, dtype)
    host = on_host(xp)
    block = _HOST_BLOCK if host else max(n, 1)

    def fill(part):
        for first in range(part.start, part.stop, block):
            last = min(first + block, part.stop)
            z = xp.arange(first + 1, last + 1, dtype=np.uint64)
            scratch = xp.empty_like(z)
            z *= _GOLDEN
            z += np.uint64(key)
            for shift, mul in _MIX:
                xp.right_shift(z, shift, out=scratch)
                z ^= scratch
                if mul is not None:
                    z *= mul
            z >>= np.uint64(64 - bits)
            piece = out[first:last]
            piece[...] = z  # exact: z < 2**bits fits the float's mantissa
            piece *= dtype.type(2.0 ** -bits)

    each_share(fill, n, n * 8, host)  # the hash makes about eight passes over each element
    return out.reshape(shape)


def dropout_forward(x, p: float, key: int):
    """Zero each element with probability p and scale the rest by 1 / (1 - p).

    Parameters
    ----------
    x : ndarray
        Float input of any shape, such as (N, C, H, W).
    p : float
        The probability of zeroing, in [0, 1].
    key : int
        A 64-bit int choosing the mask (``hash_uniform``): the same key, the same mask.

    Returns
    -------
    out : ndarray
        x's shape and dtype.
    mask : ndarray
        The same shape: 0 or 1 / (1 - p), for the backward.
    """
    x = check_float_array(x, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"dropout: p must lie in [0, 1], got {p!r}")
    xp = get_array_module(x)
    keep = hash_uniform(x.shape, key, x.dtype, xp) >= x.dtype.type(p)
    mask = keep.astype(x.dtype)
    mask *= x.dtype.type(0 if p == 1.0 else 1.0 / (1.0 - p))
    return x * mask, mask


def dropout_backward(dout, mask):
    """dx = dout * mask.

    Parameters
    ----------
    dout : ndarray
        The gradient of the output, of any shape, such as (N, C, H, W).
    mask : ndarray
        What ``dropout_forward`` returned beside its output: dout's shape.

    Returns
    -------
    dx : ndarray
        dout's shape.
    """
    return dout * mask
