"""Mini-batches: shuffled from a seeded generator, optionally augmented.

All randomness (the permutation and the augmentations) comes from one
``np.random.Generator``. A ``DataLoader`` keeps its generator across epochs, so each epoch
draws a new permutation, and a trainer can checkpoint ``loader.rng.bit_generator.state`` and
restore it to resume the exact same sequence of batches. To stop in the middle of an epoch and
continue there, it also keeps the generator's state at the epoch's start (``loader.place``, an
``EpochPlace``), from which the epoch's order is drawn again.

Images may be kept as uint8 pixels (0..255), a quarter of the memory of float32 (CIFAR-10's
training set: 150 MB, not 600 MB). Each batch is then converted to float32 in [0, 1] as it is
drawn (``as_float_images``), before any augmentation, so a uint8 dataset trains exactly like
its float32 copy.

Augmentations are callables ``(xb, rng) -> new xb`` on a float batch (N, C, H, W). They return a
new array of the same dtype and never write into their input, because without shuffling
a batch is a view into the dataset itself.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import init
from ..backend import is_array, to_numpy
from ..errors import ConfigError, DataError, ShapeError

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def as_float_images(x, dtype=np.float32) -> np.ndarray:
    """Images as floats in [0, 1]: uint8 pixels (0..255) are divided by 255 into a new dtype
    array; float arrays are returned as they are (they are taken to be in [0, 1] already).

    Parameters
    ----------
    x
        (N, C, H, W) uint8 or float -> (N, C, H, W) float, same shape.
    """
    if not is_array(x):
        x = np.asarray(x)
    if x.dtype != np.uint8:
        return x
    out = x.astype(dtype)
    out /= 255  # in place, and exactly what the float32 datasets hold: no second copy
    return out


def as_generator(seed) -> np.random.Generator:
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


def check_batching(x, y, batch_size, augment) -> tuple[np.ndarray, np.ndarray]:
    """x (N, ...) and y (N, ...) as host arrays, once batch_size (an int >= 1) and augment (None
    or a callable) are known to be good: ConfigError or DataError otherwise."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"expected batch_size to be an int >= 1, got {batch_size!r}")
    if augment is not None and not callable(augment):
        raise ConfigError(f"expected augment to be None or a callable (xb, rng) -> xb, got {augment!r}")
    x, y = to_numpy(x), to_numpy(y)  # batches are drawn on the host, then moved to the model
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise DataError(f"expected x and y with the same number of samples, got x of shape {x.shape} "
                        f"and y of shape {y.shape}")
    return x, y


class EpochPlace:
    """Where a loader stands in its epochs, so that an epoch stopped half-way can be finished.

    ``start`` is the generator's state when the epoch in progress began: its order was drawn
    from there. ``resume(start, batches)`` makes the next epoch the loader begins that one,
    continued after its first ``batches`` batches; the caller first sets the generator to the
    state it had at that point (the augmentations of the batches done drew from it too).
    """

    def __init__(self):
        self.start: dict | None = None
        self._resume: tuple[dict, int] | None = None

    def resume(self, start: dict, batches: int) -> None:
        self._resume = (start, int(batches))

    def begin(self, rng: np.random.Generator, n: int, shuffle: bool) -> tuple[np.ndarray | None, int]:
        """(the order of the n samples, None without shuffling; the first batch to draw) of the
        epoch beginning now."""
        if self._resume is None:
            self.start = rng.bit_generator.state
            return (rng.permutation(n) if shuffle else None), 0
        (self.start, first), self._resume = self._resume, None
        now = rng.bit_generator.state
        rng.bit_generator.state = self.start
        order = rng.permutation(n) if shuffle else None
        rng.bit_generator.state = now
        return order, first


def _iterate(x, y, batch_size, shuffle, rng, drop_last, augment, as_float=True,
             place: EpochPlace | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    n = len(x)
    order, first = (place or EpochPlace()).begin(rng, n, shuffle)
    stop = n - n % batch_size if drop_last else n
    for start in range(first * batch_size, stop, batch_size):
        if order is None:
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
        if as_float or augment is not None:
            xb = as_float_images(xb)
        if augment is not None:
            xb = augment(xb, rng)
        yield xb, yb


def batches(x, y, batch_size: int, shuffle: bool = True, seed=None, drop_last: bool = False,
            augment: Augment | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate once over (x, y) in mini-batches.

    Parameters
    ----------
    x, y
        (N, ...) and (N, ...) arrays, e.g. images (N, 1, 28, 28) and labels (N,).
    batch_size
        samples per batch, >= 1; the last batch is smaller unless drop_last.
    shuffle
        visit the samples in a random order drawn from the generator.
    seed
        int, np.random.Generator (advanced in place), or None (see ``as_generator``).
    drop_last
        skip the final batch if it has fewer than batch_size samples.
    augment
        callable (xb, rng) -> xb applied to each image batch, e.g. ``RandomShift()``.

    Yields
    ------
    xb, yb : ndarray, shape (B, ...)
        B <= batch_size; uint8 images come out as float32 in [0, 1]. Without shuffle and
        augment, float xb and yb are views into x and y.

    Raises
    ------
    ConfigError
        For a bad batch_size, seed or augment; raised by the call itself, not at the first batch.
    DataError
        If len(x) != len(y); likewise raised by the call.
    """
    x, y = check_batching(x, y, batch_size, augment)
    rng = as_generator(seed)
    return _iterate(x, y, int(batch_size), shuffle, rng, drop_last, augment)


class DataLoader:
    """A re-iterable ``batches``: each ``iter()`` is one epoch with a fresh permutation.

    Takes the same arguments as ``batches``, and ``as_float``: False hands uint8 batches on as
    stored when there is no augmentation (a trainer converts them on the model's device).
    ``rng`` is the generator used for shuffling and augmentation; save and restore
    ``loader.rng.bit_generator.state`` to resume a run, and ``place`` (``EpochPlace``) to
    resume it in the middle of an epoch.
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = True, seed=None, drop_last: bool = False,
                 augment: Augment | None = None, as_float: bool = True):
        self.x, self.y = check_batching(x, y, batch_size, augment)
        self.as_float = bool(as_float)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.augment = augment
        self.rng = as_generator(seed)
        self.place = EpochPlace()

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return _iterate(self.x, self.y, self.batch_size, self.shuffle, self.rng, self.drop_last, self.augment,
                        self.as_float, self.place)

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __repr__(self) -> str:
        return (f"DataLoader(n={len(self.x)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, augment={self.augment!r})")


def _unit_interval(owner: str, name: str, value) -> float:
    """value as a float in [0, 1], or a ConfigError naming owner and argument."""
    try:
        ok = 0.0 <= float(value) <= 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"{owner}: expected {name} in [0, 1], got {value!r}")
    return float(value)


def _check_batch(xb, name: str) -> np.ndarray:
    xb = np.asarray(xb)
    if xb.ndim != 4:
        raise ShapeError(f"{name}: expected a batch of images (N, C, H, W), got shape {xb.shape}")
    return xb


class RandomShift:
    """Shift each image by its own random (dy, dx) in [-max_shift, max_shift], filling with zeros.

    This is the "random crop with padding" of CIFAR training (torchvision's
    ``RandomCrop(32, padding=4)`` is ``RandomShift(4)``): pad by max_shift, crop at a uniform
    random offset. Called as ``aug(xb, rng)`` with a batch xb of shape (N, C, H, W) and a NumPy Generator; returns a new (N, C, H, W) batch of the same dtype. All
    channels of an image move together.

    Parameters
    ----------
    max_shift : int, default 2
        The largest shift, in pixels, along each axis.
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

    Called as ``aug(xb, rng)`` with a batch xb of shape (N, C, H, W) and a NumPy Generator; returns a new (N, C, H, W) batch of the same dtype.

    Parameters
    ----------
    p : float, default 0.5
        The probability of flipping each image, in [0, 1].
    """

    def __init__(self, p: float = 0.5):
        self.p = _unit_interval("RandomHorizontalFlip", "p", p)

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

    Called as ``aug(xb, rng)`` with a batch xb of shape (N, C, H, W) and a NumPy Generator; returns whatever the last augmentation returns.

    Parameters
    ----------
    transforms : iterable of callable
        Augmentations ``(xb, rng) -> xb``, applied in order.
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


class ColorJitter:
    """Random brightness and contrast per image, as torchvision's ``ColorJitter`` does, brightness first.

    Called as ``aug(xb, rng)`` with a batch xb of shape (N, C, H, W) and a NumPy Generator, xb float in [0, 1]; returns a new (N, C, H, W) batch of the same dtype.
    A strength of 0 draws nothing.

    Parameters
    ----------
    brightness : float, default 0.0
        b drawn from U[1 - brightness, 1 + brightness]; x -> clip(b * x, 0, 1).
    contrast : float, default 0.0
        c drawn from U[1 - contrast, 1 + contrast]; x -> clip(c * x + (1 - c) * m, 0, 1),
        m the image's mean gray level (ITU-R 601 luma of RGB, as Pillow's "L").
    """

    LUMA = (0.299, 0.587, 0.114)

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0):
        self.brightness = _unit_interval("ColorJitter", "brightness", brightness)
        self.contrast = _unit_interval("ColorJitter", "contrast", contrast)

    def _factors(self, strength: float, n: int, rng, dtype) -> np.ndarray:
        return rng.uniform(1 - strength, 1 + strength, size=n).astype(dtype).reshape(n, 1, 1, 1)

    def __call__(self, xb, rng: np.random.Generator) -> np.ndarray:
        xb = _check_batch(xb, "ColorJitter")
        out = xb.copy()
        if self.brightness:
            out *= self._factors(self.brightness, len(xb), rng, out.dtype)
            np.clip(out, 0, 1, out=out)
        if self.contrast:
            if out.shape[1] == 3:
                luma = np.asarray(self.LUMA, dtype=out.dtype).reshape(1, 3, 1, 1)
                mean = (out * luma).sum(axis=1, keepdims=True).mean(axis=(2, 3), keepdims=True)
            else:
                mean = out.mean(axis=(1, 2, 3), keepdims=True)
            c = self._factors(self.contrast, len(xb), rng, out.dtype)
            out *= c
            out += (1 - c) * mean
            np.clip(out, 0, 1, out=out)
        return out

    def __repr__(self) -> str:
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast})"
