"""MNIST-style folders (MNIST, Fashion-MNIST, the bundled sample): the four IDX files, raw or
gzipped, read into checked arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .files import describe_missing, find_file
from .idx import read_idx
from .info import DatasetInfo, Split

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read_folder(directory: Path, info: DatasetInfo) -> tuple[Split, Split]:
    """The train and t10k splits of an MNIST-style folder of four IDX files."""
    return read_split(directory, "train", info), read_split(directory, "t10k", info)


def read_split(directory: Path, prefix: str, described: DatasetInfo) -> Split:
    """Read and check one split ("train" or "t10k"): images (N, C, H, W) uint8, labels (N,) int64."""
    images_path = find_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = find_file(directory, f"{prefix}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:  # the folder changed since resolve()
        raise DataError(f"expected {prefix} images and labels in {directory}, but {describe_missing(directory, FILES)}")
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
