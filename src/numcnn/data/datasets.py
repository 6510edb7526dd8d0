"""The named datasets (MNIST, Fashion-MNIST, a bundled sample; CIFAR-10 and CIFAR-100 from
``cifar.py``) and folders of images (``folder.py``): what each one is, and finding, checking
and loading it.

Each dataset describes itself in a ``DatasetInfo``: the shape of one image, its class names,
the files it is made of and the reader that turns them into arrays, and the two facts about
its pictures that prediction and augmentation need. Nothing outside ``numcnn.data`` assumes a
size, a channel count or a number of classes; it asks ``info(name)``.

MNIST-style datasets are a folder holding the four standard IDX files, raw or gzipped; CIFAR
a folder of its .bin files (or of the official archive). ``resolve`` decides which folder to
use, in this order, and says which one it chose:

1. the ``data_dir`` argument (an error if the files are not there: an explicit choice is
   never silently replaced by another);
2. ``$NUMCNN_DATA/<name>`` or ``$NUMCNN_DATA`` itself;
3. the cache, ``$XDG_CACHE_HOME/numcnn/<name>`` (default ``~/.cache/numcnn/<name>``);
4. a system copy, such as Debian's ``dataset-fashion-mnist`` in /usr/share/datasets;
5. a download from the official mirrors (https first) into the cache.

Folders 1-2 are the user's and may hold their own data in the same format, so they are only
checked for structure (by the readers and ``load``). The cache and system copies claim to be
the official data: their sizes are checked on every use (cheap: a raw file's size, or the
length a gzip file records in its last four bytes) and their md5 when a file is first seen,
or seen changed; ``verified.json`` in the cache remembers which files passed.

Anything else given as a dataset that is a folder on disk is an image folder (``folder.py``):
its DatasetInfo is made on the fly from the folder (``prepare``).

Readers hand out images as stored, usually uint8 pixels (N, C, H, W); ``load`` converts them
to float32 in [0, 1] unless asked for ``dtype=None`` (what training uses: a quarter of the memory).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_write_bytes
from . import cifar
from .download import download as fetch, file_md5
from .idx import GZIP_MAGIC, open_payload, read_idx
from .loader import ColorJitter, Compose, RandomHorizontalFlip, RandomShift, as_float_images

logger = logging.getLogger(__name__)

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
ENV_VAR = "NUMCNN_DATA"
SYSTEM_ROOT = Path("/usr/share/datasets")
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
VERIFIED = "verified.json"  # in the cache root: official files whose md5 passed, by path

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


Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: everything a model, a loader, a plot or a prediction needs to know.

    name             : the canonical name, e.g. "fashion-mnist"
    shape            : (C, H, W) of one image
    classes          : the class names, indexed by label
    files            : the file stems a folder must hold (each raw or .gz)
    reader           : (folder, info) -> ((x_train, y_train), (x_test, y_test)), x (N, C, H, W)
                       uint8 pixels (or float32 in [0, 1]), y (N,) int64
    dark_background  : the pictures show light things on a dark ground (MNIST's white digits);
                       a photo of dark ink on light paper is inverted to match before prediction
    mirror_invariant : a left-right mirror image keeps its class (a shoe, not a digit), so
                       augmentation may flip
    official         : mirrors and checksums of the published files, or None; an object with
                       verify(name, folder) -> problems and download_into(name, folder) -> folder
    description      : one line for people
    locate           : folder -> the folder actually holding the files (a subfolder, an archive
                       extracted), or None; default: the folder itself if it holds every file
    normalize        : whether runs standardise the images per channel by default (a
                       ``Normalize`` layer with the training set's statistics)
    shift_fraction   : the largest random shift of augmentation, as a fraction of the image side
    """

    name: str
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    files: tuple[str, ...]
    reader: Callable[[Path, "DatasetInfo"], tuple[Split, Split]] = field(repr=False)
    dark_background: bool = False
    mirror_invariant: bool = False
    official: Any = None
    description: str = ""
    locate: Callable[[Path], Path | None] | None = field(default=None, repr=False)
    normalize: bool = False
    shift_fraction: float = 1 / 14

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def find(self, directory: Path) -> Path | None:
        """The folder under directory that holds this dataset's files, or None."""
        if self.locate is not None:
            return self.locate(directory)
        return None if _missing(directory, self.files) else directory


def _read_idx_folder(directory: Path, info: DatasetInfo) -> tuple[Split, Split]:
    """The train and t10k splits of an MNIST-style folder of four IDX files."""
    return _read_split(directory, "train", info), _read_split(directory, "t10k", info)


def _mnist_like(name: str, classes, description: str, **facts) -> DatasetInfo:
    return DatasetInfo(name, (1, 28, 28), tuple(classes), FILES, _read_idx_folder, dark_background=True,
                       official=OFFICIAL.get(name), description=description, **facts)


@dataclass(frozen=True)
class OfficialArchive:
    """One published archive (CIFAR's) and the sizes of the files extracted from it.

    urls    : mirrors of the archive, tried in order
    archive : its file name;  md5: its md5
    sizes   : file name -> bytes, for every file a copy must hold
    layout  : the CIFAR layout, which names the folder the archive extracts to
    A cache or system copy passes if every file has its size (checked on every use) and, when
    the archive lies beside the files, the archive's md5 is right (checked when first seen,
    remembered in verified.json).
    """

    urls: tuple[str, ...]
    archive: str
    md5: str
    sizes: dict
    layout: cifar.Layout

    def verify(self, name: str, directory: Path) -> list[str]:
        problems = []
        for stem, size in self.sizes.items():
            path = directory / stem
            found = path.stat().st_size if path.is_file() else None
            if found != size:
                problems.append(f"{path}: expected {size} bytes, found {'nothing' if found is None else found}")
        for archive in (directory / self.archive, directory.parent / self.archive):
            if archive.is_file() and not problems:
                record = _read_verified()
                stat = archive.stat()
                key, stamp = str(archive.resolve()), [stat.st_size, stat.st_mtime_ns]
                if record.get(key) != stamp:
                    got = _md5(archive, decompressed=False)
                    if got != self.md5:
                        problems.append(f"{archive}: expected md5 {self.md5}, got {got}")
                    else:
                        _write_verified({**record, key: stamp})
                break
        return problems

    def download_into(self, name: str, directory: Path) -> Path:
        archive = fetch([url + self.archive for url in self.urls], directory / self.archive, self.md5)
        return cifar.extract(archive, self.layout, directory)


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
        got = _md5(archive, decompressed=False)
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

    name   : a registered name, or an image folder (its class subfolders, sorted; nothing is decoded)
    labels : "coarse" for CIFAR-100's 20 superclasses
    """
    if is_folder_dataset(name) and name is not None:
        from .folder import scan

        return list(scan(Path(canonical_dataset(name)))["classes"])
    if labels == "coarse" and _canonical(name) == "cifar100":
        return list(_CIFAR100_COARSE.classes)
    return list(info(name).classes)


def model_labels(training: dict, dataset: str | None = None) -> tuple[list[str] | None, bool]:
    """(class names or None, dark_background) of a saved model, for showing its predictions.

    training : the model's training record (``read_model``'s second value; {} if none)
    dataset  : a dataset to take the class names from instead of the record's own
    Names come from the record itself, else from its dataset; the background rule likewise.
    """
    names = training.get("classes") if not dataset else None
    dataset = dataset or training.get("dataset")
    if names is None and dataset:
        names = class_names(dataset, labels=training.get("labels") if dataset == training.get("dataset") else None)
    dark = training.get("dark_background")
    if dark is None and dataset and not is_folder_dataset(dataset):
        dark = info(dataset).dark_background
    return names, bool(dark)


def to_model_labels(y, classes, model_classes):
    """Labels of a dataset read as a model's: y (N,) indexes classes -> (N,) indexes
    model_classes, matched by name. DataError naming the classes the model does not know."""
    index = {name: i for i, name in enumerate(model_classes)}
    unknown = [name for name in classes if name not in index]
    if unknown:
        shown = ", ".join(map(str, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        raise DataError(f"{len(unknown)} of the data's {len(classes)} classes ({shown}) are not among the "
                        f"model's {len(model_classes)} ({', '.join(map(str, list(model_classes)[:5]))}, ...)")
    return np.array([index[name] for name in classes], dtype=np.int64)[np.asarray(y, dtype=np.int64)]


def default_augmentation(dataset: str | DatasetInfo, jitter: float = 0.0):
    """The augmentation ``numcnn train --augment`` uses: random shifts (a random crop of the
    zero-padded image) of up to the dataset's ``shift_fraction`` of the image side (2 pixels at
    28x28 for MNIST, 4 at 32x32 for CIFAR and image folders), left-right flips where a mirror
    image keeps its class, and with jitter > 0 brightness and contrast jitter of that strength.

    Returns a callable (xb, rng) -> xb on (N, C, H, W) float batches.
    """
    described = dataset if isinstance(dataset, DatasetInfo) else info(dataset)
    steps = [RandomShift(max(1, round(min(described.shape[1:]) * described.shift_fraction)))]
    if described.mirror_invariant:
        steps.append(RandomHorizontalFlip(0.5))
    if jitter:
        steps.append(ColorJitter(jitter, jitter))
    return Compose(steps) if len(steps) > 1 else steps[0]


def cache_root() -> Path:
    """$XDG_CACHE_HOME/numcnn, default ~/.cache/numcnn."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative path here.
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "numcnn"


def cache_dir(name: str) -> Path:
    """The download cache of a dataset: $XDG_CACHE_HOME/numcnn/<name>, default ~/.cache/numcnn/<name>."""
    return cache_root() / _canonical(name)


def find_file(directory: Path, stem: str) -> Path | None:
    """The file stem or stem.gz in directory; the raw one first, it is faster to read."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(directory: Path, files=FILES) -> list[str]:
    return [stem for stem in files if find_file(directory, stem) is None]


def _describe_missing(directory: Path, files=FILES, gz: bool = True) -> str:
    """Why directory does not hold files: it does not exist, or which ones it lacks
    (gz: a file may also be there gzipped, as the IDX files may; CIFAR's may not)."""
    if not directory.is_dir():
        return f"{directory} does not exist"
    if not gz:
        return f"{directory} lacks {', '.join(stem for stem in files if not (directory / stem).is_file())}"
    return f"{directory} lacks {', '.join(f'{stem}[.gz]' for stem in _missing(directory, files))}"


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


def content_size(path: Path) -> int:
    """The decompressed size of a file without decompressing it: a raw file's size, or for a
    gzip file the length its last four bytes record (modulo 2**32, as gzip stores it)."""
    with open(path, "rb") as f:
        if f.read(2) != GZIP_MAGIC:
            return os.fstat(f.fileno()).st_size
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def _check_md5(path: Path, official: Official, i: int, stem: str) -> str | None:
    """None if path is the official file i (as archive, or by decompressed content), else why not."""
    if _md5(path, decompressed=False) == official.archive_md5[i]:
        return None
    if official.content_md5 is None:
        return (f"{path}: expected the official archive (md5 {official.archive_md5[i]}), found "
                f"other bytes, and no md5 of the decompressed {stem} is known to check instead")
    try:
        got = _md5(path, decompressed=True)
    except DataError as exc:
        return str(exc)
    if got != official.content_md5[i]:
        return f"{path}: expected decompressed md5 {official.content_md5[i]}, got {got}"
    return None


def _read_verified() -> dict:
    try:
        record = json.loads((cache_root() / VERIFIED).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_verified(record: dict) -> None:
    # Only a memo: when it cannot be written (a read-only home), the md5 is checked next time.
    try:
        atomic_write_bytes(cache_root() / VERIFIED, (json.dumps(record, indent=1) + "\n").encode())
    except OSError as exc:
        logger.info("could not record verified files in %s: %s", cache_root(), exc)


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
    record = _read_verified()
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
        _write_verified(record)
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
    name     : a registered name ("mnist", "fashion-mnist", "sample", "cifar10", "cifar100",
               aliases such as "fashion_mnist" or "CIFAR-10"), or an image folder's path.
    data_dir : a folder holding the dataset's files; if given, it is used or an error raised.
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
    if is_folder_dataset(name) and name is not None:
        if data_dir is not None:
            raise DataError(f"data_dir applies to named datasets; {name!r} is an image folder already")
        path = Path(canonical_dataset(name))
        return path, f"image folder: {path}"
    described = info(name)
    name, files = described.name, described.files
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        found = described.find(directory)
        if found is None:
            raise DataError(f"data_dir for {name}: expected {_expected(described)} "
                            f"in {directory}, but {_describe_missing(directory, files, described.locate is None)}")
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
            tried.append(f"{label}: {_describe_missing(directory, files, described.locate is None)}")
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


def _read_split(directory: Path, prefix: str, described: DatasetInfo) -> Split:
    """Read and check one split ("train" or "t10k"): images (N, C, H, W) uint8, labels (N,) int64."""
    images_path = find_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = find_file(directory, f"{prefix}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:  # the folder changed since resolve()
        raise DataError(f"expected {prefix} images and labels in {directory}, but {_describe_missing(directory)}")
    images, labels = read_idx(images_path), read_idx(labels_path)
    channels, height, width = described.shape
    n_classes = described.num_classes

    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (height, width):
        raise DataError(f"{images_path}: expected uint8 images of shape (N, {height}, {width}), "
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

    return images.reshape(len(images), channels, height, width), labels.astype(np.int64)


# The options each kind of dataset takes (``prepare``); the others must be left None.
FOLDER_OPTIONS = ("image_size", "channels", "val_fraction", "strict")


def prepare(name_or_path, data_dir: str | os.PathLike | None = None, download: bool = True, *,
            labels: str | None = None, image_size: int | None = None, channels: int | None = None,
            val_fraction: float | None = None, strict: bool = False, seed: int = 0,
            progress: bool | None = None) -> tuple[DatasetInfo, Path, str]:
    """Find a dataset and describe it: (info, folder, source line), ready for ``info.reader``.

    name_or_path : a registered name, or a folder of images (see ``folder.open_folder``)
    labels       : CIFAR-100 only: "fine" (100 classes, the default) or "coarse" (20)
    image_size, channels, val_fraction, strict, seed, progress : image folders only (see
                   ``folder.open_folder``); an image folder is decoded (or read from its
                   cache) here, since its shape and classes come from its pictures
    Raises ConfigError for an option the dataset does not take, DataError as ``resolve``.
    """
    if is_folder_dataset(name_or_path) and name_or_path is not None:
        from .folder import open_folder

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
    name     : a registered name (``DATASETS``: "mnist", "fashion-mnist", "sample", "cifar10",
               "cifar100") or the path of an image folder.
    data_dir : folder holding the dataset's files; default: look them up (see ``resolve``).
    download : whether a missing dataset may be downloaded into the cache.
    dtype    : np.float32 (default) or np.float64: floats in [0, 1]; None: as stored, uint8
               pixels 0..255 for every built-in format, a quarter of the memory (CIFAR-10's
               training set: 150 MB instead of 600 MB). Training, evaluate and predict take
               uint8 images and scale each batch as it is drawn.
    options  : labels="coarse" for CIFAR-100's 20 superclasses; image_size, channels,
               val_fraction, strict, seed for image folders (see ``prepare``).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        x_* : (N, C, H, W), (C, H, W) = ``info(name).shape`` (an image folder's own);
        y_* : (N,) int64 in 0..K-1, K = the number of classes.
        N is 60000 / 10000 for MNIST and Fashion-MNIST, 50000 / 10000 for CIFAR, 6000 / 1000
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
