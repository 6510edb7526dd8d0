"""Datasets and mini-batches: IDX and CIFAR files, image folders, loaders and augmentation.

::

    info("sample").shape                                        # (1, 28, 28): (C, H, W)
    (x_train, y_train), (x_test, y_test) = load("sample")     # x: (N, 1, 28, 28) float32
    (x, y), _ = load("cifar10", dtype=None)                   # x: (50000, 3, 32, 32) uint8
    (x, y), _ = load("photos/", image_size=32)                # a folder of class subfolders
    for xb, yb in DataLoader(x_train, y_train, batch_size=64, seed=0, augment=RandomShift(2)):
        ...
"""

from .classes import default_augmentation, model_labels, to_model_labels
from .datasets import (CLASS_NAMES, DATASETS, REGISTRY, DatasetInfo, canonical_dataset, class_names, info,
                       is_folder_dataset, load, prepare, resolve)
from .download import download
from .idx import read_idx, write_idx
from .images import read_image
from .loader import (ColorJitter, Compose, DataLoader, RandomHorizontalFlip, RandomShift, as_float_images,
                     batches)
from .stats import channel_stats

__all__ = [
    "read_idx", "write_idx",
    "load", "prepare", "resolve", "info", "DatasetInfo", "REGISTRY", "class_names", "CLASS_NAMES", "DATASETS",
    "canonical_dataset", "is_folder_dataset", "model_labels", "to_model_labels", "default_augmentation",
    "channel_stats",
    "batches", "DataLoader", "RandomShift", "RandomHorizontalFlip", "ColorJitter", "Compose", "as_float_images",
    "download", "read_image",
]
