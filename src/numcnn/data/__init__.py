"""Datasets and mini-batches: IDX files, MNIST / Fashion-MNIST / a bundled sample, and loaders.

    info("sample").shape                                        # (1, 28, 28): (C, H, W)
    (x_train, y_train), (x_test, y_test) = load("sample")     # x: (N, 1, 28, 28) float32
    for xb, yb in DataLoader(x_train, y_train, batch_size=64, seed=0, augment=RandomShift(2)):
        ...
"""

from .datasets import (CLASS_NAMES, DATASETS, REGISTRY, DatasetInfo, class_names, default_augmentation, info, load,
                       resolve)
from .download import download
from .idx import read_idx, write_idx
from .images import read_image
from .loader import Compose, DataLoader, RandomHorizontalFlip, RandomShift, batches

__all__ = [
    "read_idx", "write_idx",
    "load", "resolve", "info", "DatasetInfo", "REGISTRY", "class_names", "CLASS_NAMES", "DATASETS",
    "default_augmentation",
    "batches", "DataLoader", "RandomShift", "RandomHorizontalFlip", "Compose",
    "download", "read_image",
]
