"""Datasets and mini-batches: IDX files, MNIST / Fashion-MNIST / a bundled sample, and loaders.

    (x_train, y_train), (x_test, y_test) = load("sample")     # x: (N, 1, 28, 28) float32
    for xb, yb in DataLoader(x_train, y_train, batch_size=64, seed=0, augment=RandomShift(2)):
        ...
"""

from .datasets import CLASS_NAMES, DATASETS, class_names, load, resolve
from .download import download
from .idx import read_idx, write_idx
from .loader import Compose, DataLoader, RandomHorizontalFlip, RandomShift, batches

__all__ = [
    "read_idx", "write_idx",
    "load", "resolve", "class_names", "CLASS_NAMES", "DATASETS",
    "batches", "DataLoader", "RandomShift", "RandomHorizontalFlip", "Compose",
    "download",
]
