"""The named datasets (MNIST, Fashion-MNIST, a bundled sample; CIFAR-10 and CIFAR-100 from
``cifar.py``) and folders of images (``folder.py``): what each one is, and finding, checking
and loading it.

Each dataset describes itself in a ``DatasetInfo`` (``info.py``): the shape of one image, its
class names, the files it is made of and the reader that turns them into arrays. Nothing outside
``numcnn.data`` assumes a size, a channel count or a number of classes; it asks ``info(name)``.

``resolve`` decides which folder a named dataset is read from, in this order, and says which:
the ``data_dir`` argument; ``$NUMCNN_DATA/<name>`` or ``$NUMCNN_DATA``; the cache
(``$XDG_CACHE_HOME/numcnn/<name>``); a system copy such as Debian's ``dataset-fashion-mnist``;
a download from the official mirrors into the cache. The user's own folders are checked for
structure only; the cache and system copies claim to be the official data, so their sizes are
checked on every use and their md5 when a file is first seen (``files.py`` remembers which
passed). Anything else given as a dataset that is a folder on disk is an image folder.

Readers hand out images as stored, usually uint8 pixels (N, C, H, W); ``load`` converts them
to float32 in [0, 1] unless asked for ``dtype=None`` (what training uses: a quarter of the memory).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from . import cifar, files, mnist
from .download import download as fetch
from .files import cache_root, content_size, find_file
from .folder import open_folder, scan
from .info import DatasetInfo, OfficialArchive
from .mnist import FILES
from .loader import as_float_images

logger = logging.getLogger(__name__)

_FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
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
    # Decompressed sizes in bytes: 16 or 8 header bytes plus one byte per pixel or label.
    content_size: tuple[int, int, int, int] = (47040016, 60008, 7840016, 10008)

    # What resolve() asks of every kind of official data (see cifar.OfficialArchive too).
    def verify(self, name: str, directory: Path) -> list[str]:
        return verify_checksums(name, directory)

    def download_into(self, name: str, directory: Path) -> Path:
        _download_into(name, directory)
        return directory


OFFICIAL = {
    "mnist": Official(
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        archive_md5=("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                     "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
        content_md5=None,
    ),
    "fashion-mnist": Official(
        # https first; the project's own S3 website serves plain http only, md5-checked all the same.
        mirrors=("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                 "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
                 "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        archive_md5=("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                     "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
        content_md5=("f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
                     "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"),
    ),
}


def _mnist_like(name: str, classes, description: str, **facts) -> DatasetInfo:
    return DatasetInfo(name, (1, 28, 28), tuple(classes), FILES, mnist.read_folder, dark_background=True,
                       official=OFFICIAL.get(name), description=description, **facts)


def _cifar_locate(layout: cifar.Layout, name: str):
    """locate() for a CIFAR dataset: the folder itself, its archive subfolder, or the official
    archive in it (md5-checked, then extracted beside itself, or into the cache where that folder
    is read-only). The archive's name and md5 are looked up when needed, in REGISTRY."""
    def locate(directory: Path) -> Path | None:
        for folder in (directory, directory / layout.folder):
            if all((folder / stem).is_file() for stem in layout.files):
                return folder
        official = REGISTRY[name].official
        archive = directory / official.archive
        if not archive.is_file():
            return None
        got = files.md5(archive, decompressed=False)
        if got != official.md5:
            raise DataError(f"{archive}: not the official {official.archive} (md5 {got}, expected "
                            f"{official.md5}); delete it, or extract your own files into {directory}")
        into = directory if os.access(directory, os.W_OK) else cache_dir(name)
        logger.info("extracting %s into %s", archive, into)
        return cifar.extract(archive, layout, into)
    return locate


def _cifar(name: str, layout: cifar.Layout, classes, archive: str, md5: str, description: str) -> DatasetInfo:
    def read(directory: Path, described: DatasetInfo):
        return cifar.read(directory, layout, described.num_classes)

    records = {"train": 50000, "test": 10000}
    sizes = {stem: records[split] // len(files) * layout.record
             for split, files in (("train", layout.train), ("test", layout.test)) for stem in files}
    official = OfficialArchive(("https://www.cs.toronto.edu/~kriz/",), archive, md5, sizes, layout)
    return DatasetInfo(name, cifar.SHAPE, tuple(classes), layout.files, read, mirror_invariant=True,
                       official=official, description=description, locate=_cifar_locate(layout, name),
                       normalize=True, shift_fraction=1 / 8)


_CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
_CIFAR100_MD5 = "03b5dce01913d631647c71ecec9e9cb8"
REGISTRY: dict[str, DatasetInfo] = {info.name: info for info in (
    _mnist_like("mnist", (str(digit) for digit in range(10)), "handwritten digits, 60000 + 10000"),
    _mnist_like("fashion-mnist", _FASHION_CLASSES, "Zalando's clothes, 60000 + 10000", mirror_invariant=True),
    _mnist_like("sample", _FASHION_CLASSES, "a Fashion-MNIST subset shipped with numcnn, 6000 + 1000",
                mirror_invariant=True),
    _cifar("cifar10", cifar.CIFAR10, cifar.CIFAR10_CLASSES, "cifar-10-binary.tar.gz", _CIFAR10_MD5,
           "32x32 colour photos of 10 classes, 50000 + 10000"),
    _cifar("cifar100", cifar.CIFAR100_FINE_LAYOUT, cifar.CIFAR100_FINE, "cifar-100-binary.tar.gz", _CIFAR100_MD5,
           "32x32 colour photos of 100 classes (20 superclasses: labels='coarse'), 50000 + 10000"),
)}
# CIFAR-100 labelled by its 20 superclasses: the same files, the record's other label byte.
_CIFAR100_COARSE = _cifar("cifar100", cifar.CIFAR100_COARSE_LAYOUT, cifar.CIFAR100_COARSE, "cifar-100-binary.tar.gz",
                          _CIFAR100_MD5, "CIFAR-100 by its 20 superclasses, 50000 + 10000")
LABELS = {"cifar100": ("fine", "coarse")}
DATASETS = tuple(REGISTRY)
CLASS_NAMES: dict[str, list[str]] = {name: list(info.classes) for name, info in REGISTRY.items()}
_ALIASES = {"fashion_mnist": "fashion-mnist", "cifar-10": "cifar10", "cifar_10": "cifar10",
            "cifar-100": "cifar100", "cifar_100": "cifar100"}


def _registry_key(name) -> str | None:
    if not isinstance(name, str):
        return None
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    return key if key in REGISTRY else None


def _canonical(name) -> str:
    key = _registry_key(name)
    if key is None:
        raise DataError(f"unknown dataset {name!r}: expected one of {', '.join(REGISTRY)} "
                        f"(or {', '.join(_ALIASES)})")
    return key


def canonical_dataset(name_or_path) -> str:
    """A registry name made canonical ("CIFAR-10" -> "cifar10"), or an image folder's absolute
    path. A name wins over a folder of the same name in the working directory (write ./cifar10
    for the folder). DataError if it is neither."""
    key = _registry_key(name_or_path)
    if key is not None:
        return key
    if isinstance(name_or_path, (str, os.PathLike)) and str(name_or_path).strip():
        path = Path(name_or_path).expanduser()
        if path.is_dir():
            return str(path.resolve())
        if os.sep in str(name_or_path) or path.exists():
            raise DataError(f"dataset {str(name_or_path)!r}: expected a folder of images, but "
                            f"{'it is not a folder' if path.exists() else 'no such folder exists'}")
    raise DataError(f"unknown dataset {name_or_path!r}: expected one of {', '.join(REGISTRY)} "
                    f"(or {', '.join(_ALIASES)}), or a folder of images")


def is_folder_dataset(name_or_path) -> bool:
    """True for anything that is not a registered name (it would be read as an image folder)."""
    return _registry_key(name_or_path) is None


def info(name: str) -> DatasetInfo:
    """The description of dataset name (an alias such as "fashion_mnist" works too)."""
    return REGISTRY[_canonical(name)]


def class_names(name: str, labels: str | None = None) -> list[str]:
    """The class names of dataset name, indexed by label (a fresh list, safe to modify).

    Parameters
    ----------
    name
        a registered name, or an image folder (its class subfolders, sorted; nothing is decoded)
    labels : "coarse" for CIFAR-100's 20 superclasses
    """
    if is_folder_dataset(name) and name is not None:
        return list(scan(Path(canonical_dataset(name)))["classes"])
    if labels == "coarse" and _canonical(name) == "cifar100":
        return list(_CIFAR100_COARSE.classes)
    return list(info(name).classes)


def cache_dir(name: str) -> Path:
    """The download cache of a dataset: $XDG_CACHE_HOME/numcnn/<name>, default ~/.cache/numcnn/<name>."""
    return cache_root() / _canonical(name)


def _check_md5(path: Path, official: Official, i: int, stem: str) -> str | None:
    """None if path is the official file i (as archive, or by decompressed content), else why not."""
    if files.md5(path, decompressed=False) == official.archive_md5[i]:
        return None
    if official.content_md5 is None:
        return (f"{path}: expected the official archive (md5 {official.archive_md5[i]}), found "
                f"other bytes, and no md5 of the decompressed {stem} is known to check instead")
    try:
        got = files.md5(path, decompressed=True)
    except DataError as exc:
        return str(exc)
    if got != official.content_md5[i]:
        return f"{path}: expected decompressed md5 {official.content_md5[i]}, got {got}"
    return None


def verify_checksums(name: str, directory: str | os.PathLike) -> list[str]:
    """Check that directory holds the official files of name; return the problems found (empty if none).

    Every file's decompressed size is checked, every time. Its md5 is checked when
    ``verified.json`` in the cache does not vouch for this very file (same path, size and
    modification time); a file that passes is recorded there. A file passes the md5 check if
    it is the official .gz archive byte for byte, or if its decompressed bytes have the
    official content md5 (where that is known).
    """
    official = OFFICIAL[_canonical(name)]
    directory = Path(directory)
    problems = []
    record = files.read_verified()
    recorded = dict(record)
    for i, stem in enumerate(FILES):
        path = find_file(directory, stem)
        if path is None:
            problems.append(f"{directory / stem}[.gz] is missing")
            continue
        size = content_size(path)
        if size != official.content_size[i]:
            problems.append(f"{path}: expected {official.content_size[i]} bytes of {stem}, found {size}")
            continue
        stat = path.stat()
        key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
        if record.get(key) == stamp:
            continue
        problem = _check_md5(path, official, i, stem)
        if problem is None:
            record[key] = stamp
        else:
            record.pop(key, None)
            problems.append(problem)
    if record != recorded:
        files.write_verified(record)
    return problems


def _download_into(name: str, directory: Path) -> None:
    """Fetch the files directory lacks, or holds wrong, from the official mirrors, md5-checked."""
    official = OFFICIAL[name]
    for i, (stem, md5) in enumerate(zip(FILES, official.archive_md5)):
        path = find_file(directory, stem)
        if path is not None and _check_md5(path, official, i, stem) is None:
            continue
        if path is not None and path.suffix != ".gz":
            path.unlink()  # a wrong raw file would shadow the good archive
        urls = [mirror + stem + ".gz" for mirror in official.mirrors]
        fetch(urls, directory / f"{stem}.gz", md5)


def _expected(described: DatasetInfo) -> str:
    """The files a folder of this dataset must hold, for messages."""
    if isinstance(described.official, OfficialArchive):
        return f"the files {', '.join(described.files)} (or the archive {described.official.archive})"
    return f"the files {', '.join(described.files)} (each raw or .gz)"


def resolve(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> tuple[Path, str]:
    """Choose the folder that dataset name is loaded from (see the module docstring for the order).

    Parameters
    ----------
    name : str
        A registered name ("mnist", "fashion-mnist", "sample", "cifar10", "cifar100",
        aliases such as "fashion_mnist" or "CIFAR-10"), or an image folder's path.
    data_dir : path, optional
        A folder holding the dataset's files; if given, it is used or an error raised.
    download : bool, default True
        Whether step 5 (download into the cache) may run.

    Returns
    -------
    directory : Path
        The folder.
    source : str
        A one-line description of where it came from, e.g.
        "system copy: /usr/share/datasets/fashion-mnist (md5 verified)".

    Raises
    ------
    DataError
        Unknown name; data_dir lacking files; or no usable folder at all, with every place
        that was tried and why it was passed over.
    """
    if is_folder_dataset(name) and name is not None:
        if data_dir is not None:
            raise DataError(f"data_dir applies to named datasets; {name!r} is an image folder already")
        path = Path(canonical_dataset(name))
        return path, f"image folder: {path}"
    described = info(name)
    name, stems = described.name, described.files
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        found = described.find(directory)
        if found is None:
            raise DataError(f"data_dir for {name}: expected {_expected(described)} "
                            f"in {directory}, but {files.describe_missing(directory, stems, described.locate is None)}")
        return found, f"data_dir argument: {found}"
    if name == "sample":
        return SAMPLE_DIR, f"bundled sample: {SAMPLE_DIR} (Fashion-MNIST subset, 600 train + 100 test per class)"

    tried = []
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env).expanduser()
        subfolders = [root / name] + [root / alias for alias, target in _ALIASES.items() if target == name]
        for directory in [*subfolders, root]:
            found = described.find(directory)
            if found is not None:
                return found, f"${ENV_VAR}: {found}"
        tried.append(f"${ENV_VAR}={root}: no complete set of files in {root} or {subfolders[0]}")
    else:
        tried.append(f"${ENV_VAR}: not set")

    for label, directory in (("cache", cache_dir(name)), ("system copy", SYSTEM_ROOT / name)):
        found = described.find(directory)
        if found is None:
            tried.append(f"{label}: {files.describe_missing(directory, stems, described.locate is None)}")
            continue
        problems = described.official.verify(name, found) if described.official is not None else []
        if not problems:
            return found, f"{label}: {found}" + (" (md5 verified)" if described.official else "")
        reason = f"{label} {found} skipped, it is not the official data: {'; '.join(problems)}"
        warnings.warn(reason, stacklevel=2)
        tried.append(reason)

    if described.official is None:
        tried.append(f"download: {name} has no official mirrors")
    elif download:
        try:
            found = described.official.download_into(name, cache_dir(name))
            return found, f"cache: {found} (just downloaded from the official mirrors, md5 verified)"
        except DataError as exc:
            tried.append(f"download: {exc}")
    else:
        tried.append("download: not allowed (download=False)")
    places = "\n  - ".join(tried)
    raise DataError(f"no {name} data found; looked at:\n  - {places}\n"
                    f"Put {_expected(described)} in a folder and pass it as data_dir or set ${ENV_VAR}.")


# The options each kind of dataset takes (``prepare``); the others must be left None.
FOLDER_OPTIONS = ("image_size", "channels", "val_fraction", "strict")


def prepare(name_or_path, data_dir: str | os.PathLike | None = None, download: bool = True, *,
            labels: str | None = None, image_size: int | None = None, channels: int | None = None,
            val_fraction: float | None = None, strict: bool = False, seed: int = 0,
            progress: bool | None = None) -> tuple[DatasetInfo, Path, str]:
    """Find a dataset and describe it: (info, folder, source line), ready for ``info.reader``.

    Raises ConfigError for an option the dataset does not take, DataError as ``resolve``.

    Parameters
    ----------
    name_or_path : str or path
        A registered name, or a folder of images (see ``folder.open_folder``).
    data_dir, download
        As ``resolve`` takes them.
    labels : {"fine", "coarse"}, optional
        CIFAR-100 only: "fine" (100 classes, the default) or "coarse" (20).
    image_size, channels, val_fraction, strict, seed, progress
        Image folders only (see ``folder.open_folder``); an image folder is decoded (or read
        from its cache) here, since its shape and classes come from its pictures.

    Returns
    -------
    tuple
        The description (its ``shape`` (C, H, W)), the folder, and where it came from.
    """
    if is_folder_dataset(name_or_path) and name_or_path is not None:
        if labels is not None:
            raise ConfigError("labels applies to cifar100 only, not to an image folder")
        path, source = resolve(name_or_path, data_dir, download)
        described = open_folder(path, image_size=image_size, channels=channels, val_fraction=val_fraction,
                                strict=strict, seed=seed, progress=progress)
        return described, path, f"{source} ({described.description})"
    described = info(name_or_path)
    given = {"image_size": image_size, "channels": channels, "val_fraction": val_fraction}
    extra = [key for key, value in given.items() if value is not None] + (["strict"] if strict else [])
    if extra:
        raise ConfigError(f"{', '.join(extra)}: for image folders only, not for {described.name}")
    if labels is not None:
        choices = LABELS.get(described.name)
        if choices is None:
            raise ConfigError(f"labels: only {', '.join(LABELS)} has a choice of labels, not {described.name}")
        if labels not in choices:
            raise ConfigError(f"labels must be one of {', '.join(choices)} for {described.name}, got {labels!r}")
        if labels == "coarse":
            described = _CIFAR100_COARSE
    folder, source = resolve(described.name, data_dir, download)
    if isinstance(described.official, OfficialArchive):  # CIFAR: the folder's own names file wins
        layout = described.official.layout
        named = cifar.read_class_names(folder, layout, described.classes)
        if len(named) < described.num_classes:
            raise DataError(f"{folder / layout.names_file}: names {len(named)} classes, expected "
                            f"{described.num_classes}")
        described = replace(described, classes=named[:described.num_classes])
    return described, folder, source


def _as_dtype(x: np.ndarray, dtype, name: str) -> np.ndarray:
    """Images as the caller asked: None keeps them, uint8 requires pixels, a float dtype scales them."""
    if dtype is None or x.dtype == np.dtype(dtype):
        return x
    if np.dtype(dtype) == np.uint8:
        raise DataError(f"{name}: its reader gives {x.dtype} images, which cannot be handed out as uint8")
    if x.dtype == np.uint8:
        return as_float_images(x, dtype)
    return x.astype(dtype)


def load(name: str, data_dir: str | os.PathLike | None = None, download: bool = True, dtype=np.float32,
         **options):
    """Load a dataset as images and int64 labels.

    Parameters
    ----------
    name
        a registered name (``DATASETS``: "mnist", "fashion-mnist", "sample", "cifar10",
        "cifar100") or the path of an image folder.
    data_dir
        folder holding the dataset's files; default: look them up (see ``resolve``).
    download : bool, default True
        Whether a missing dataset may be downloaded into the cache.
    dtype
        np.float32 (default) or np.float64: floats in [0, 1]; None: as stored, uint8
        pixels 0..255 for every built-in format, a quarter of the memory (CIFAR-10's
        training set: 150 MB instead of 600 MB). Training, evaluate and predict take
        uint8 images and scale each batch as it is drawn.
    options
        labels="coarse" for CIFAR-100's 20 superclasses; image_size, channels,
        val_fraction, strict, seed for image folders (see ``prepare``).

    Returns
    -------
    train, test : tuple of ndarray
        (x_train, y_train), (x_test, y_test): x of shape (N, C, H, W), (C, H, W) =
        ``info(name).shape`` (an image folder's own); y of shape (N,), int64 in 0..K-1, K
        the number of classes. N is 60000 / 10000 for MNIST and Fashion-MNIST, 50000 / 10000 for CIFAR, 6000 / 1000
        for the sample.

    Raises
    ------
    DataError
        If no data is found, a file is corrupt, images have another shape or type than the
        dataset's, image and label counts differ, or a label is outside 0..K-1.
    """
    described, directory, source = prepare(name, data_dir, download, **options)
    logger.info("loading %s from %s", described.name, source)
    (x, y), (x_test, y_test) = described.reader(directory, described)
    return (_as_dtype(x, dtype, described.name), y), (_as_dtype(x_test, dtype, described.name), y_test)
