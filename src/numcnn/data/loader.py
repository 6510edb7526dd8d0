"""Mini-batches: shuffled from a seeded generator, optionally augmented.

All randomness (the permutation and the augmentations) comes from one
``np.random.Generator``. A ``DataLoader`` keeps its generator across epochs, so each epoch
draws a new permutation, and a trainer can checkpoint ``loader.rng.bit_generator.state`` and
restore it to resume the exact same sequence of batches.

Augmentations are callables ``(xb, rng) -> new xb`` on a batch (N, C, H, W). They return a
new array of the same dtype and never write into their input, because without shuffling
a batch is a view into the dataset itself.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import init
from ..errors import ConfigError, DataError, ShapeError

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _as_generator(seed) -> np.random.Generator:
    """A Generator from an int, a Generator (used as is, not copied) or None.

    None draws a seed from numcnn's default generator, so ``numcnn.manual_seed`` also makes
    shuffling reproducible.
    """
    if seed is None:
        seed = init.default_rng().integers(2**63)
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"expected seed to be None, a non-negative int or an np.random.Generator, "
                          f"got {seed!r}") from exc


def _check(x, y, batch_size, augment) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"expected batch_size to be an int >= 1, got {batch_size!r}")
    if augment is not None and not callable(augment):
        raise ConfigError(f"expected augment to be None or a callable (xb, rng) -> xb, got {augment!r}")
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise DataError(f"expected x and y with the same number of samples, got x of shape {x.shape} "
                        f"and y of shape {y.shape}")
    return x, y


def _iterate(x, y, batch_size, shuffle, rng, drop_last, augment) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    n = len(x)
    order = rng.permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
        if augment is not None:
            xb = augment(xb, rng)
        yield xb, yb


def batches(x, y, batch_size: int, shuffle: bool = True, seed=None, drop_last: bool = False,
            augment: Augment | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate once over (x, y) in mini-batches.

    Parameters
    ----------
    x, y       : (N, ...) and (N, ...) arrays, e.g. images (N, 1, 28, 28) and labels (N,).
    batch_size : samples per batch, >= 1; the last batch is smaller unless drop_last.
    shuffle    : visit the samples in a random order drawn from the generator.
    seed       : int, np.random.Generator (advanced in place), or None (see ``_as_generator``).
    drop_last  : skip the final batch if it has fewer than batch_size samples.
    augment    : callable (xb, rng) -> xb applied to each image batch, e.g. ``RandomShift()``.

    Yields
    ------
    (xb, yb) : (B, ...) and (B,...) with B <= batch_size. Without shuffle and augment, xb and yb
               are views into x and y.

    Raises
    ------
    ConfigError for a bad batch_size, seed or augment; DataError if len(x) != len(y). Both are
    raised by the call itself, not at the first batch.
    """
    x, y = _check(x, y, batch_size, augment)
    rng = _as_generator(seed)
    return _iterate(x, y, int(batch_size), shuffle, rng, drop_last, augment)


class DataLoader:
    """A re-iterable ``batches``: each ``iter()`` is one epoch with a fresh permutation.

    Takes the same arguments as ``batches``. ``rng`` is the generator used for shuffling and
    augmentation; save and restore ``loader.rng.bit_generator.state`` to resume a run.
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = True, seed=None, drop_last: bool = False,
                 augment: Augment | None = None):
        self.x, self.y = _check(x, y, batch_size, augment)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.augment = augment
        self.rng = _as_generator(seed)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return _iterate(self.x, self.y, self.batch_size, self.shuffle, self.rng, self.drop_last, self.augment)

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __repr__(self) -> str:
        return (f"DataLoader(n={len(self.x)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, augment={self.augment!r})")


def _check_batch(xb, name: str) -> np.ndarray:
    xb = np.asarray(xb)
    if xb.ndim != 4:
        raise ShapeError(f"{name}: expected a batch of images (N, C, H, W), got shape {xb.shape}")
    return xb


class RandomShift:
    """Shift each image by its own random (dy, dx) in [-max_shift, max_shift], filling with zeros.

    xb : (N, C, H, W) -> (N, C, H, W), same dtype. All channels of an image move together.
    """

    def __init__(self, max_shift: int = 2):
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
            raise ConfigError(f"RandomShift: expected max_shift to be an int >= 0, got {max_shift!r}")
        self.max_shift = int(max_shift)

    def __call__(self, xb, rng: np.random.Generator) -> np.ndarray:
        xb = _check_batch(xb, "RandomShift")
        k, n = self.max_shift, len(xb)
        if k == 0:
            return xb.copy()
        dy = rng.integers(-k, k + 1, size=n)
        dx = rng.integers(-k, k + 1, size=n)
        # Zero-pad by k, then view every (H, W) window of the padded image: window (a, b) is the
        # image moved by (k - a, k - b). One fancy index then picks each sample's own window,
        # with no Python loop over images. windows: (N, C, 2k+1, 2k+1, H, W), a view.
        padded = np.pad(xb, ((0, 0), (0, 0), (k, k), (k, k)))
        windows = sliding_window_view(padded, xb.shape[2:], axis=(2, 3))
        # The index arrays sit on axes 0, 2, 3 around a slice, so NumPy puts their broadcast
        # axis (N) first: the result is (N, C, H, W), a fresh copy.
        return windows[np.arange(n), :, k - dy, k - dx]

    def __repr__(self) -> str:
        return f"RandomShift(max_shift={self.max_shift})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability p.

    xb : (N, C, H, W) -> (N, C, H, W), same dtype.
    """

    def __init__(self, p: float = 0.5):
        try:
            ok = 0.0 <= float(p) <= 1.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"RandomHorizontalFlip: expected p in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, xb, rng: np.random.Generator) -> np.ndarray:
        xb = _check_batch(xb, "RandomHorizontalFlip")
        flip = rng.random(len(xb)) < self.p
        out = xb.copy()
        out[flip] = xb[flip, ..., ::-1]
        return out

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Apply augmentations one after another, all with the same generator.

    xb : (N, C, H, W) -> whatever the last augmentation returns.
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise ConfigError(f"Compose: expected callables (xb, rng) -> xb, got {t!r}")

    def __call__(self, xb, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            xb = t(xb, rng)
        return xb

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"
