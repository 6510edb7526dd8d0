"""The binary versions of CIFAR-10 and CIFAR-100 (never the pickled ones): records, files, archives.

A batch file is a run of fixed-size records, one per image:

::

    CIFAR-10  : 1 label byte,                         then 3072 pixel bytes   (3073 bytes)
    CIFAR-100 : 1 coarse-label byte, 1 fine-label byte, then 3072 pixel bytes (3074 bytes)

The 3072 pixel bytes are the 32x32 image's red plane, then green, then blue, each row-major:
exactly one (3, 32, 32) uint8 image in NCHW order, so a file is read with one reshape and no
transpose. CIFAR-10 trains on data_batch_1..5.bin and tests on test_batch.bin; CIFAR-100 has
train.bin and test.bin. Class names are in batches.meta.txt (CIFAR-10), fine_label_names.txt
and coarse_label_names.txt (CIFAR-100), one per line.

The official archives hold these files in one folder (cifar-10-batches-bin/, cifar-100-binary/);
``extract`` takes that folder's regular files out of an archive and nothing else.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import umask_mode

PIXELS = 3 * 32 * 32
SHAPE = (3, 32, 32)
_CHUNK_RECORDS = 10000  # records read at a time: memory stays near the output array's size

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_COARSE = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2")
CIFAR100_FINE = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm")


@dataclass(frozen=True)
class Layout:
    """One CIFAR variant's files and records.

    Parameters
    ----------
    label_bytes
        bytes before the pixels in each record (1 for CIFAR-10, 2 for CIFAR-100)
    label_byte
        which of them is the label used (CIFAR-100: 0 coarse, 1 fine)
    train, test : the batch files of each split, in order
    names_file : the file holding the class names of that label, one per line
    folder : the folder the official archive extracts to
    """

    label_bytes: int
    label_byte: int
    train: tuple[str, ...]
    test: tuple[str, ...]
    names_file: str
    folder: str

    @property
    def record(self) -> int:
        return self.label_bytes + PIXELS

    @property
    def files(self) -> tuple[str, ...]:
        return self.train + self.test


CIFAR10 = Layout(1, 0, tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",),
                 "batches.meta.txt", "cifar-10-batches-bin")
CIFAR100_FINE_LAYOUT = Layout(2, 1, ("train.bin",), ("test.bin",), "fine_label_names.txt", "cifar-100-binary")
CIFAR100_COARSE_LAYOUT = Layout(2, 0, ("train.bin",), ("test.bin",), "coarse_label_names.txt", "cifar-100-binary")


def _records(path: Path, layout: Layout) -> int:
    """How many whole records path holds; DataError naming it if it is missing or cut short."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: missing; a CIFAR folder needs {', '.join(layout.files)}") from None
    if size % layout.record:
        raise DataError(f"{path}: {size} bytes is not a whole number of {layout.record}-byte records "
                        f"({size // layout.record} records and {size % layout.record} bytes of a partial one)")
    return size // layout.record


def read_batches(paths, layout: Layout, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR batch files into one array, a chunk of records at a time.

    Parameters
    ----------
    paths
        the files, concatenated in this order; any whole number of records each

    Returns
    -------
    images (N, 3, 32, 32) uint8, labels (N,) int64
    Raises DataError naming the file for a partial record, a missing file, or a label >= num_classes.
    """
    paths = [Path(p) for p in paths]
    counts = [_records(p, layout) for p in paths]
    images = np.empty((sum(counts), *SHAPE), np.uint8)
    labels = np.empty(sum(counts), np.int64)
    start = 0
    for path, count in zip(paths, counts):
        with open(path, "rb") as f:
            for first in range(0, count, _CHUNK_RECORDS):
                n = min(_CHUNK_RECORDS, count - first)
                block = np.fromfile(f, np.uint8, n * layout.record).reshape(n, layout.record)
                images[start:start + n] = block[:, layout.label_bytes:].reshape(n, *SHAPE)
                labels[start:start + n] = block[:, layout.label_byte]
                start += n
        part = labels[start - count:start]
        if count and part.max() >= num_classes:
            bad = int(np.argmax(part >= num_classes))
            raise DataError(f"{path}: record {bad} has label {part[bad]}; expected 0..{num_classes - 1}")
    return images, labels


def read_class_names(directory: Path, layout: Layout, default: tuple[str, ...]) -> tuple[str, ...]:
    """The class names in the folder's names file (blank lines dropped), or default without one."""
    path = directory / layout.names_file
    if not path.is_file():
        return default
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                  if line.strip())
    if not names:
        raise DataError(f"{path}: expected one class name per line, found none")
    return names


def read(directory: Path, layout: Layout, num_classes: int):
    """((x_train, y_train), (x_test, y_test)) of a CIFAR folder, x uint8 (N, 3, 32, 32), y int64."""
    return (read_batches([directory / f for f in layout.train], layout, num_classes),
            read_batches([directory / f for f in layout.test], layout, num_classes))


def extract(archive: Path, layout: Layout, into: Path) -> Path:
    """Extract the regular files of the archive's ``layout.folder`` into ``into/layout.folder``.

    Members outside that folder, links, devices and names with ".." are never written. Each
    file is written under a temporary name and renamed, so an interrupted extraction leaves
    no partial .bin behind. Returns the folder.
    """
    target = into / layout.folder
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if (not member.isfile() or len(parts) != 2 or parts[0] != layout.folder
                        or parts[1] in ("..", ".") or parts[1].startswith(".")):
                    continue
                source = tar.extractfile(member)
                fd, tmp = tempfile.mkstemp(prefix=f".{parts[1]}.", suffix=".part", dir=target)
                try:
                    umask_mode(fd)
                    with os.fdopen(fd, "wb") as out:
                        for chunk in iter(lambda: source.read(1 << 20), b""):
                            out.write(chunk)
                    os.replace(tmp, target / parts[1])
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{archive}: cannot extract it ({type(exc).__name__}: {exc})") from None
    return target
