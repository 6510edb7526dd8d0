"""Your own pictures as a dataset: a folder of class subfolders, decoded once and cached.

Two layouts are read:

::

    PATH/train/<class>/*  and  PATH/test/<class>/*  (or PATH/val/<class>/*)
    PATH/<class>/*        split into train and test by val_fraction (stratified, seeded)

Classes are the train subfolders sorted by name, as torchvision's ImageFolder sorts them, so
label k means the same class in both libraries; a test class that training lacks is an error.
Files are found in subfolders at any depth; hidden ones (".name") and other extensions are
left out. Pillow reads the pictures (``images.decode``): every one becomes the dataset's
channel count (RGB when any picture has colour) and, with image_size, has its shorter side
resized to image_size and its centre cropped to a square. Without image_size, pictures that all
share one size keep it; pictures of different sizes are resized to their median shorter side,
at most ``AUTO_MAX_SIDE``, so that any folder of pictures loads with no option, and the
description says what was done (``recipe.build`` squares pictures of one oblong size for a
model that takes square images).

A picture Pillow cannot read is skipped, with one warning that counts them and names the
first few (strict=True makes it an error). The decoded uint8 array is cached in
``$XDG_CACHE_HOME/numcnn/folders``, keyed by the folder's list of files with their sizes and
modification times and by the decoding options, so the next run starts at once; a changed
folder is decoded again and its older cache (for the same options) removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, ModelFileError
from ..io import atomic_savez, read_npz
from . import images
from .files import cache_root
from .info import DatasetInfo

# 2: pictures not all one square size are resized without image_size; 32-bit integer and float
# pictures are scaled, no longer clipped.
CACHE_VERSION = 2
SHOWN_SKIPPED = 5        # unreadable files named in the warning
PROGRESS_FROM = 1000     # files: a bar on a terminal from this many on
DEFAULT_VAL_FRACTION = 0.2
TEST_FOLDERS = ("test", "val")
MAX_IMAGE_SIZE = 4096    # image_size: larger is a typo, not a dataset (one 50000^2 RGB image is 7.5 GB)
AUTO_MAX_SIDE = 64       # pictures resized without an image_size: a side a CPU trains on in minutes


class SkippedImagesWarning(UserWarning):
    """Some files of an image folder could not be read and were left out."""


def _image_files(folder: Path) -> list[tuple[str, int, int]]:
    """(path relative to folder, size, mtime_ns) of every image file below folder, sorted."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(images.IMAGE_EXTENSIONS):
                continue
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError:  # a dangling link: reading it fails later, and is reported there
                stat = os.stat_result((0,) * 10)
            found.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def _classes(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))


def scan(path: Path) -> dict:
    """The folder's layout: {"classes", "files": [(relpath, size, mtime, label, part)], "split"}.

    part is 0 for training, 1 for test; split is "folders" (train/ and test/ or val/) or
    "fraction" (to be split by val_fraction).
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a folder of images")
    train = path / "train"
    test = next((path / name for name in TEST_FOLDERS if (path / name).is_dir()), None)
    roots = [(train, 0)] + ([(test, 1)] if test is not None else []) if train.is_dir() else [(path, 0)]
    classes = _classes(roots[0][0])
    if not classes:
        where = roots[0][0]
        raise DataError(f"{where}: expected one subfolder per class ({where}/<class>/*.png, ...), found none")
    if test is not None:
        extra = sorted(set(_classes(test)) - set(classes))
        if extra:
            raise DataError(f"{test}: classes {extra} are not in {train}; a test class must also be a training class")
    if len(classes) < 2:  # one class: every label is 0, and the model learns nothing (loss 0, 100%)
        raise DataError(f"{roots[0][0]}: a classifier needs at least 2 classes, found 1 "
                        f"({classes[0]} only); add a subfolder per class")
    files = []
    for root, part in roots:
        for label, name in enumerate(classes):
            if (root / name).is_dir():
                files += [(str(Path(root.name if root != path else "") / name / rel), size, mtime, label, part)
                          for rel, size, mtime in _image_files(root / name)]
    if not files:
        raise DataError(f"{path}: the class folders hold no image files "
                        f"({', '.join(images.IMAGE_EXTENSIONS)})")
    empty = sorted(set(classes) - {classes[f[3]] for f in files if f[4] == 0})
    if empty:  # as torchvision's ImageFolder: a class without pictures is a mistake, not a class
        raise DataError(f"{roots[0][0]}: the class folders {empty} hold no image files "
                        f"({', '.join(images.IMAGE_EXTENSIONS)})")
    return {"classes": classes, "files": files, "split": "folders" if test is not None else "fraction",
            "test_folder": test.name if test is not None else None}


def _cache_file(path: Path, layout: dict, options: dict) -> Path:
    # <folder and options>-<contents>.npz: a newer decode of the same folder with the same options
    # replaces the older one; other options keep theirs.
    where = hashlib.sha256(json.dumps([str(path), options]).encode()).hexdigest()[:16]
    content = hashlib.sha256(json.dumps([CACHE_VERSION, layout["classes"], layout["files"]]).encode())
    return cache_root() / "folders" / f"{where}-{content.hexdigest()[:24]}.npz"


def _read_cache(cache: Path):
    """(x, y, part, meta) from a cache file, or None when there is none or it does not read."""
    if not cache.is_file():
        return None
    try:
        arrays, meta = read_npz(cache)
        return arrays["x"], arrays["y"], arrays["part"], meta
    except (ModelFileError, KeyError):
        return None


def _write_cache(cache: Path, x, y, part, meta) -> None:
    """Write the cache and remove older ones of this folder with these options; a cache that
    cannot be written only costs the next run a decode."""
    try:
        atomic_savez(cache, {"x": x, "y": y, "part": part}, meta)
        for old in cache.parent.glob(cache.name.split("-")[0] + "-*.npz"):
            if old != cache:
                old.unlink(missing_ok=True)
    except OSError as exc:
        warnings.warn(f"could not cache the decoded images in {cache.parent}: {exc}", stacklevel=3)


def _map(function, items, progress: bool, description: str) -> list:
    """function over items on a few threads (Pillow decodes outside the GIL), in order, with an
    optional progress bar."""
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(items), desc=description, unit="img", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            pass
    results = []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for result in pool.map(function, items, chunksize=64):
            results.append(result)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return results


def _header(path: Path):
    """(height, width, is_color) from the file's header, or the reason it cannot be read."""
    Image = images.require_pillow()
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF says: rotate by 90 degrees
                width, height = height, width
            return height, width, images.is_color(image)
    except Exception as exc:  # Pillow raises many types for a bad file; each is a skip
        return f"{type(exc).__name__}: {exc}"


def _auto_side(headers) -> int | None:
    """The side pictures of these (height, width, colour) headers are resized to when no
    image_size is given: None where they all share one size (kept as it is), else the median
    shorter side, at most AUTO_MAX_SIDE."""
    if len({h[:2] for h in headers}) <= 1:
        return None
    return min(int(np.median([min(h[:2]) for h in headers])), AUTO_MAX_SIDE)


def _decode_all(path: Path, layout: dict, image_size, channels, strict: bool, progress: bool):
    """Decode every file: (x (N, C, H, W) uint8, y, part, skipped [(relpath, reason)], the
    side chosen without an image_size or None)."""
    files = layout["files"]
    headers = _map(lambda f: _header(path / f[0]), files, progress, "reading headers")
    skipped = [(f[0], h) for f, h in zip(files, headers) if isinstance(h, str)]
    good = [(f, h) for f, h in zip(files, headers) if not isinstance(h, str)]
    if channels is None:
        channels = 3 if any(h[2] for _, h in good) else 1
    auto = _auto_side([h for _, h in good]) if image_size is None else None
    side = image_size if image_size is not None else auto
    size = (side, side) if side is not None else None

    def decode(item):
        try:
            return images.decode(path / item[0][0], channels, size)
        except DataError as exc:
            return str(exc).split(": ", 1)[-1]

    decoded = _map(decode, good, progress, f"decoding {path.name}")
    skipped += [(f[0], d) for (f, _), d in zip(good, decoded) if isinstance(d, str)]
    kept = [(f, d) for (f, _), d in zip(good, decoded) if not isinstance(d, str)]
    if skipped and strict:
        raise DataError(f"{path}: cannot read {len(skipped)} of {len(files)} image files, e.g. "
                        f"{skipped[0][0]} ({skipped[0][1]})")
    if not kept:
        raise DataError(f"{path}: none of its {len(files)} image files could be read, e.g. "
                        f"{skipped[0][0]} ({skipped[0][1]})")
    x = np.stack([d for _, d in kept])
    y = np.array([f[3] for f, _ in kept], np.int64)
    part = np.array([f[4] for f, _ in kept], np.int8)
    return x, y, part, sorted(skipped), auto


def split_by_fraction(y: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """part (N,) int8: 1 for the validation samples, 0 for training; per class, round(fraction
    * count) samples (at least 1 and leaving at least 1, for a class of 2 or more) drawn with a
    generator seeded by seed, so a split is the same in every run with that seed.

    Parameters
    ----------
    y : ndarray, shape (N,)
        Integer labels.
    """
    rng = np.random.default_rng(seed)
    part = np.zeros(len(y), np.int8)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        n = len(members)
        take = min(max(round(val_fraction * n), 1), n - 1) if n >= 2 else 0
        part[rng.permutation(members)[:take]] = 1
    return part


def open_folder(path, image_size: int | None = None, channels: int | None = None,
                val_fraction: float | None = None, strict: bool = False, seed: int = 0,
                progress: bool | None = None):
    """Decode (or read from the cache) an image folder; returns its DatasetInfo.

    Parameters
    ----------
    path : the folder (see the module docstring for its two layouts)
    image_size
        N: resize every picture's shorter side to N and crop the centre N x N;
        None: keep their size where all share one, else as N = their median shorter
        side, at most AUTO_MAX_SIDE
    channels : 1 or 3; None: 3 when any picture has colour, else 1
    val_fraction
        for a folder without test/ (or val/): the fraction of each class held out
        for testing (default 0.2); an error for a folder that has its own test split
    strict : an unreadable file is an error, not a skip with a warning
    seed : seeds the val_fraction split
    progress
        a progress bar while decoding; None: on a terminal, for 1000 files or more
    The info's reader returns the decoded arrays: x (N, C, H, W) uint8, y (N,) int64, each
    split in one fixed shuffled order (the same in every run), so that its first images are a
    mix of classes.
    """
    path = Path(path).expanduser().resolve()
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer))
                                   or not 1 <= image_size <= MAX_IMAGE_SIZE):
        raise ConfigError(f"image_size must be an int in 1..{MAX_IMAGE_SIZE} or None, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels must be 1, 3 or None, got {channels!r}")
    if val_fraction is not None and not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise ConfigError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    images.require_pillow()
    layout = scan(path)
    if layout["split"] == "folders" and val_fraction is not None:
        raise ConfigError(f"{path} has its own test split (train/ and test/ or val/); val_fraction applies "
                          f"to a folder of class subfolders alone")
    if progress is None:
        progress = len(layout["files"]) >= PROGRESS_FROM and sys.stderr.isatty()
    options = {"image_size": image_size, "channels": channels}
    cache = _cache_file(path, layout, options)
    cached = _read_cache(cache)
    start = time.perf_counter()
    if cached is not None:
        x, y, part, meta = cached
        skipped = [tuple(item) for item in meta.get("skipped", [])]
        auto = meta.get("auto_side")
        how = f"decoded images from the cache {cache}"
    else:
        x, y, part, skipped, auto = _decode_all(path, layout, image_size, channels, strict, progress)
        _write_cache(cache, x, y, part, {"folder": str(path), "skipped": skipped, "auto_side": auto})
        how = f"decoded in {time.perf_counter() - start:.1f} s, cached"
    if auto is not None:
        how += (f"; resized to {auto}x{auto} (shorter side, centre crop), the pictures differing in size: "
                f"image_size (--image-size N) chooses")
    if skipped:
        if strict:
            raise DataError(f"{path}: cannot read {len(skipped)} image files, e.g. {skipped[0][0]} ({skipped[0][1]})")
        names = ", ".join(name for name, _ in skipped[:SHOWN_SKIPPED])
        more = f" and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
        warnings.warn(f"{path}: skipped {len(skipped)} unreadable image file{'s' * (len(skipped) > 1)}: "
                      f"{names}{more} (first: {skipped[0][1]}); strict (--strict) makes this an error",
                      SkippedImagesWarning, stacklevel=2)
    if layout["split"] == "fraction":
        fraction = DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction
        part = split_by_fraction(y, fraction, seed)
        split = f"{fraction:g} of each class held out (seed {seed})"
    else:
        split = f"its train/ and {layout['test_folder']}/ folders"
    train, test = part == 0, part == 1
    # A fixed shuffle (the same in every run): the files come class by class, and the first N
    # images (--limit) should be a mix of classes, as in MNIST's and CIFAR's files.
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[train[order]], order[test[order]]
    arrays = ((x[train], y[train]), (x[test], y[test]))
    if not len(test):
        raise DataError(f"{path}: no test images (the test folder is empty, or every class has one image)")
    classes = tuple(layout["classes"])
    description = (f"{len(classes)} classes, {len(train)} train + {len(test)} test images of "
                   f"{'x'.join(map(str, x.shape[1:]))}, split by {split}; {how}")

    def read(folder, described):
        return arrays

    return DatasetInfo(str(path), tuple(int(s) for s in x.shape[1:]), classes, files=(), reader=read,
                       mirror_invariant=True, description=description, normalize=True, shift_fraction=1 / 8)
