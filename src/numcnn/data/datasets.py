"""The named datasets (MNIST, Fashion-MNIST and a bundled sample): finding, checking and loading them.

Each dataset is a folder holding the four standard IDX files, raw or gzipped. ``resolve``
decides which folder to use, in this order, and says which one it chose:

1. the ``data_dir`` argument (an error if the files are not there: an explicit choice is
   never silently replaced by another);
2. ``$NUMCNN_DATA/<name>`` or ``$NUMCNN_DATA`` itself;
3. the cache, ``$XDG_CACHE_HOME/numcnn/<name>`` (default ``~/.cache/numcnn/<name>``);
4. a system copy, such as Debian's ``dataset-fashion-mnist`` in /usr/share/datasets;
5. a download from the official mirrors into the cache.

Folders 1-3 are the user's and may hold their own IDX data, so they are only checked for
structure (by the IDX reader and ``load``). System copies and downloads claim to be the
official data, so they are checked by md5 as well.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .download import download as fetch, file_md5
from .idx import open_payload, read_idx

logger = logging.getLogger(__name__)

DATASETS = ("mnist", "fashion-mnist", "sample")
_ALIASES = {"fashion_mnist": "fashion-mnist"}

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

_FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion-mnist": _FASHION_CLASSES,
    "sample": list(_FASHION_CLASSES),  # the sample is drawn from Fashion-MNIST
}

IMAGE_SHAPE = (28, 28)
ENV_VAR = "NUMCNN_DATA"
SYSTEM_ROOT = Path("/usr/share/datasets")
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"


@dataclass(frozen=True)
class Official:
    """Where the official files live and what their md5s are, in the order of FILES.

    archive_md5 is of the .gz files the mirrors serve; content_md5 of the decompressed
    bytes, which is what survives a repackager recompressing the files (Debian did), or
    None where we do not know it.
    """

    mirrors: tuple[str, ...]
    archive_md5: tuple[str, str, str, str]
    content_md5: tuple[str, str, str, str] | None


OFFICIAL = {
    "mnist": Official(
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        archive_md5=("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                     "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
        content_md5=None,
    ),
    "fashion-mnist": Official(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        archive_md5=("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                     "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
        content_md5=("f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
                     "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"),
    ),
}


def _canonical(name) -> str:
    key = _ALIASES.get(name.strip().lower(), name.strip().lower()) if isinstance(name, str) else None
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)} "
                        f"(or {', '.join(_ALIASES)})")
    return key


def class_names(name: str) -> list[str]:
    """The 10 class names of dataset name, indexed by label (a fresh list, safe to modify)."""
    return list(CLASS_NAMES[_canonical(name)])


def cache_dir(name: str) -> Path:
    """The download cache of a dataset: $XDG_CACHE_HOME/numcnn/<name>, default ~/.cache/numcnn/<name>."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative path here.
    root = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return root / "numcnn" / _canonical(name)


def find_file(directory: Path, stem: str) -> Path | None:
    """The file stem or stem.gz in directory; the raw one first, it is faster to read."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(directory: Path) -> list[str]:
    return [stem for stem in FILES if find_file(directory, stem) is None]


def _describe_missing(directory: Path) -> str:
    if not directory.is_dir():
        return f"{directory} does not exist"
    return f"{directory} lacks {', '.join(f'{stem}[.gz]' for stem in _missing(directory))}"


# md5s by (path, size, mtime, of what): checking a system copy costs ~0.5 s, mostly decompressing,
# so resolve() followed by load() in one process pays it once.
_md5_memo: dict[tuple[str, int, int, str], str] = {}


def _md5(path: Path, decompressed: bool) -> str:
    """md5 of the file's bytes, or of its decompressed bytes (same thing for a raw file)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, "content" if decompressed else "file")
    if key not in _md5_memo:
        if not decompressed:
            _md5_memo[key] = file_md5(path)
        else:
            digest = hashlib.md5(usedforsecurity=False)
            with open_payload(path) as (stream, _):
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
            _md5_memo[key] = digest.hexdigest()
    return _md5_memo[key]


def verify_checksums(name: str, directory: str | os.PathLike) -> list[str]:
    """Check that directory holds the official files of name; return the problems found (empty if none).

    A file passes if it is the official .gz archive byte for byte, or if its decompressed
    bytes have the official content md5 (where that is known).
    """
    official = OFFICIAL[_canonical(name)]
    directory = Path(directory)
    problems = []
    for i, stem in enumerate(FILES):
        path = find_file(directory, stem)
        if path is None:
            problems.append(f"{directory / stem}[.gz] is missing")
            continue
        if _md5(path, decompressed=False) == official.archive_md5[i]:
            continue
        if official.content_md5 is None:
            problems.append(f"{path}: expected the official archive (md5 {official.archive_md5[i]}), found "
                            f"other bytes, and no md5 of the decompressed {stem} is known to check instead")
            continue
        try:
            got = _md5(path, decompressed=True)
        except DataError as exc:
            problems.append(str(exc))
            continue
        if got != official.content_md5[i]:
            problems.append(f"{path}: expected decompressed md5 {official.content_md5[i]}, got {got}")
    return problems


def _download_into(name: str, directory: Path) -> None:
    """Fetch the files directory lacks from the official mirrors, md5-checked."""
    official = OFFICIAL[name]
    for stem, md5 in zip(FILES, official.archive_md5):
        if find_file(directory, stem) is None:
            urls = [mirror + stem + ".gz" for mirror in official.mirrors]
            fetch(urls, directory / f"{stem}.gz", md5)


def resolve(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> tuple[Path, str]:
    """Choose the folder that dataset name is loaded from (see the module docstring for the order).

    Parameters
    ----------
    name     : "mnist", "fashion-mnist" (or "fashion_mnist"), or "sample".
    data_dir : a folder holding the 4 files; if given, it is used or an error raised.
    download : whether step 5 (download into the cache) may run.

    Returns
    -------
    (directory, source) : the folder, and a one-line description of where it came from,
    e.g. "system copy: /usr/share/datasets/fashion-mnist (md5 verified)".

    Raises
    ------
    DataError
        Unknown name; data_dir lacking files; or no usable folder at all, with every place
        that was tried and why it was passed over.
    """
    name = _canonical(name)
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        if _missing(directory):
            raise DataError(f"data_dir for {name}: expected the files {', '.join(FILES)} (each raw or .gz) "
                            f"in {directory}, but {_describe_missing(directory)}")
        return directory, f"data_dir argument: {directory}"
    if name == "sample":
        return SAMPLE_DIR, f"bundled sample: {SAMPLE_DIR} (Fashion-MNIST subset, 600 train + 100 test per class)"

    tried = []
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env).expanduser()
        subfolders = [root / name] + [root / alias for alias, target in _ALIASES.items() if target == name]
        for directory in [*subfolders, root]:
            if not _missing(directory):
                return directory, f"${ENV_VAR}: {directory}"
        tried.append(f"${ENV_VAR}={root}: no complete set of files in {root} or {subfolders[0]}")
    else:
        tried.append(f"${ENV_VAR}: not set")

    cache = cache_dir(name)
    if not _missing(cache):
        return cache, f"cache: {cache}"
    tried.append(f"cache: {_describe_missing(cache)}")

    system = SYSTEM_ROOT / name
    if _missing(system):
        tried.append(f"system copy: {_describe_missing(system)}")
    else:
        problems = verify_checksums(name, system)
        if not problems:
            return system, f"system copy: {system} (md5 verified)"
        reason = f"system copy {system} skipped, it is not the official data: {'; '.join(problems)}"
        warnings.warn(reason, stacklevel=2)
        tried.append(reason)

    if download:
        try:
            _download_into(name, cache)
            return cache, f"cache: {cache} (just downloaded from the official mirrors, md5 verified)"
        except DataError as exc:
            tried.append(f"download: {exc}")
    else:
        tried.append("download: not allowed (download=False)")
    places = "\n  - ".join(tried)
    raise DataError(f"no {name} data found; looked at:\n  - {places}\n"
                    f"Put the files {', '.join(FILES)} (raw or .gz) in a folder and pass it as data_dir "
                    f"or set ${ENV_VAR}.")


def _read_split(directory: Path, prefix: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one split ("train" or "t10k"): images (N, 1, 28, 28) float32, labels (N,) int64."""
    images_path = find_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = find_file(directory, f"{prefix}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:  # the folder changed since resolve()
        raise DataError(f"expected {prefix} images and labels in {directory}, but {_describe_missing(directory)}")
    images, labels = read_idx(images_path), read_idx(labels_path)

    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{images_path}: expected uint8 images of shape (N, 28, 28), "
                        f"found {images.dtype} of shape {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "ui":
        raise DataError(f"{labels_path}: expected integer labels of shape (N,), "
                        f"found {labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"expected as many labels as images, found {len(images)} images in {images_path} "
                        f"and {len(labels)} labels in {labels_path}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)]
        raise DataError(f"{labels_path}: expected labels in 0..{n_classes - 1}, found {bad.size} outside, "
                        f"e.g. {bad[0]}")

    x = images.reshape(len(images), 1, *IMAGE_SHAPE).astype(np.float32)
    x /= 255  # in place: the float copy of 60000 images is 188 MB, no need for a second one
    return x, labels.astype(np.int64)


def load(name: str, data_dir: str | os.PathLike | None = None, download: bool = True):
    """Load a dataset as float images in [0, 1] and int64 labels.

    Parameters
    ----------
    name     : "mnist", "fashion-mnist" (or "fashion_mnist"), or "sample".
    data_dir : folder holding the 4 IDX files; default: look them up (see ``resolve``).
    download : whether a missing dataset may be downloaded into the cache.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        x_* : (N, 1, 28, 28) float32 in [0, 1];  y_* : (N,) int64 in 0..9.
        N is 60000 / 10000 for MNIST and Fashion-MNIST, 6000 / 1000 for the sample.

    Raises
    ------
    DataError
        If no data is found, a file is corrupt, images are not 28x28 uint8, image and label
        counts differ, or a label is outside 0..9.
    """
    directory, source = resolve(name, data_dir, download)
    logger.info("loading %s from %s", name, source)
    n_classes = len(CLASS_NAMES[_canonical(name)])
    return _read_split(directory, "train", n_classes), _read_split(directory, "t10k", n_classes)
