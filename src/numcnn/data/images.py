"""Image files (PNG, JPEG, ...) as arrays a model takes, through Pillow (the "train" extra)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError


def read_image(path, shape: tuple[int, int, int], dark_background: bool = False) -> tuple[np.ndarray, bool]:
    """An image file as a (C, H, W) float32 array in [0, 1], resized to the model's input.

    shape           : the model's (C, H, W); C must be 1 (grayscale) or 3 (RGB).
    dark_background : the model was trained on light things on a dark ground (MNIST's white
                      digits). A picture with a light background (dark ink on paper, judged by
                      the mean brightness of its border) is then inverted to match.
    Returns (image, inverted).
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is in the "train" extra
        raise ConfigError("reading images needs Pillow: pip install 'numcnn[train]'") from None
    channels, height, width = shape
    if channels not in (1, 3):
        raise ConfigError(f"the model takes {channels}-channel images; only 1 (gray) or 3 (RGB) can be read")
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.LANCZOS)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as an image ({exc})") from None
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    inverted = False
    if dark_background:
        gray = array.mean(axis=0)
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        inverted = bool(border.mean() > 0.5)
    if inverted:
        array = 1.0 - array
    return np.ascontiguousarray(array), inverted
