"""What a dataset is (``DatasetInfo``), and what a published archive of one is (``OfficialArchive``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import cifar, files
from .download import download as fetch


Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: everything a model, a loader, a plot or a prediction needs to know.

    Parameters
    ----------
    name : str
        The canonical name, e.g. "fashion-mnist".
    shape : tuple of int, shape (3,)
        (C, H, W) of one image.
    classes : tuple of str
        The class names, indexed by label.
    files : tuple of str
        The file stems a folder must hold (each raw or .gz).
    reader : callable
        (folder, info) -> ((x_train, y_train), (x_test, y_test)), x of shape (N, C, H, W),
        uint8 pixels (or float32 in [0, 1]), y of shape (N,), int64.
    dark_background : bool, default False
        The pictures show light things on a dark ground (MNIST's white digits); a photo of
        dark ink on light paper is inverted to match before prediction.
    mirror_invariant : bool, default False
        A left-right mirror image keeps its class (a shoe, not a digit), so augmentation may flip.
    official : object, optional
        Mirrors and checksums of the published files, or None; an object with
        verify(name, folder) -> problems and download_into(name, folder) -> folder.
    description : str, default ""
        One line for people.
    locate : callable, optional
        folder -> the folder actually holding the files (a subfolder, an archive extracted),
        or None; default: the folder itself if it holds every file.
    normalize : bool, default False
        Whether runs standardise the images per channel by default (a ``Normalize`` layer
        with the training set's statistics).
    shift_fraction : float, default 1/14
        The largest random shift of augmentation, as a fraction of the image side.
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
        return None if files.missing(directory, self.files) else directory


@dataclass(frozen=True)
class OfficialArchive:
    """One published archive (CIFAR's) and the sizes of the files extracted from it.

    Parameters
    ----------
    urls : mirrors of the archive, tried in order
    archive : its file name;  md5: its md5
    sizes : file name -> bytes, for every file a copy must hold
    layout
        the CIFAR layout, which names the folder the archive extracts to
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
                record = files.read_verified()
                stat = archive.stat()
                key, stamp = str(archive.resolve()), [stat.st_size, stat.st_mtime_ns]
                if record.get(key) != stamp:
                    got = files.md5(archive, decompressed=False)
                    if got != self.md5:
                        problems.append(f"{archive}: expected md5 {self.md5}, got {got}")
                    else:
                        files.write_verified({**record, key: stamp})
                break
        return problems

    def download_into(self, name: str, directory: Path) -> Path:
        archive = fetch([url + self.archive for url in self.urls], directory / self.archive, self.md5)
        return cifar.extract(archive, self.layout, directory)
