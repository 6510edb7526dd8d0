"""Example images for the page to open on: one test image per class, so that a model is
explained the moment the page loads, before anyone draws.

They come with a pretrained model (``numcnn.pretrained.examples``), or from the test set of the
dataset a run was trained on, when that data is on this machine (it is never downloaded here).
"""

from __future__ import annotations

import base64
import io

import numpy as np

from .. import data
from ..errors import NumcnnError
from ..recipe import data_of

__all__ = ["from_dataset", "first_per_class", "as_png"]


def first_per_class(x: np.ndarray, y: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The first image of each class that has one: x (K', C, H, W), y (K',), in class order."""
    picked = [int(np.flatnonzero(y == k)[0]) for k in range(classes) if np.any(y == k)]
    return x[picked], y[picked]


def from_dataset(training: dict, input_shape) -> tuple[np.ndarray, np.ndarray] | None:
    """One test image per class of the dataset a run recorded, read as the run read it, or None
    when the record names no dataset, its files are not here, or its images do not fit the model."""
    if not training.get("dataset"):
        return None
    try:
        dataset, data_dir, options = data_of(training, input_shape=input_shape)
        described, folder, _ = data.prepare(dataset, data_dir, download=False, **options)
        if tuple(described.shape) != tuple(input_shape):
            return None
        _, (x, y) = described.reader(folder, described)
    except (NumcnnError, OSError):
        return None
    if x.dtype != np.uint8:
        x = np.clip(np.rint(np.asarray(x) * 255), 0, 255).astype(np.uint8)
    return first_per_class(x, y, described.num_classes)


def as_png(image: np.ndarray) -> str:
    """uint8 (C, H, W) with C 1 or 3 -> a PNG file, base64-encoded (what the page's <img> shows)."""
    from PIL import Image

    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
