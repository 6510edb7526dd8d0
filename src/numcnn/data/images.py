"""Image files (PNG, JPEG, BMP, GIF, TIFF, WebP, ...) as arrays a model takes, through Pillow
(the "train" extra).

One conversion serves training data and prediction alike, so a picture given to ``predict``
goes through exactly what the image folder's pictures went through: EXIF rotation applied,
grayscale/RGBA/palette converted to the dataset's channel count (alpha dropped, as
torchvision does), the shorter side resized to the target and the centre cropped.

Gray images deeper than 8 bits are scaled to 0..255, never clipped, by the range their values
are taken to lie in:

* 16-bit (Pillow's modes ``I;16*``): 0..65535, whatever the values.
* 32-bit integers (mode ``I``; also 16-bit PGM, and 16-bit PNG in older Pillow): the smallest
  standard range that holds every value: 0..255 as they are, 0..65535 as 16-bit; values below
  0 or above 65535: the image's own minimum..maximum.
* floating point (mode ``F``): 0..1 when every value lies there, the float images' convention;
  else the image's own minimum..maximum. NaN or infinity is a DataError naming the file.

An image of one value outside these ranges, which has no minimum..maximum to stretch, is black.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError

# What Pillow reads that we take as an image in a folder (lower case; the case of a name does not matter).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}


def require_pillow():
    """The PIL.Image module, or a ConfigError with the pip command (Pillow is in the "train" extra)."""
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError("reading images needs Pillow, which is not installed: pip install 'numcnn[train]'") from None
    return Image


def is_color(image) -> bool:
    """Whether a Pillow image has colour: an RGB-like mode, or a palette that is not all gray."""
    mode = image.mode
    if mode in _GRAY_MODES or mode.startswith("I;16"):
        return False
    if mode in ("P", "PA"):
        palette = np.asarray(image.getpalette() or [], dtype=np.int16).reshape(-1, 3)
        return bool(np.any(palette != palette[:, :1]))
    return True


def _to_mode(image, channels: int):
    """The image in mode "L" (channels 1) or "RGB" (channels 3)."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):  # convert("L") would clip them
        image = _deep_gray_to_8_bits(image)
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # what Pillow asks for before dropping a palette's alpha
    return image.convert("L" if channels == 1 else "RGB")


def _deep_gray_to_8_bits(image):
    """A gray image of mode I;16*, I or F in mode "L", its values' range scaled to 0..255 (the
    module's docstring gives the ranges). Raises DataError for NaN or infinite values."""
    Image = require_pillow()
    values = np.asarray(image)
    if image.mode == "F" and not np.isfinite(values).all():
        raise DataError("a floating-point (mode F) image holding NaN or infinite values")
    lo, hi = (values.min(), values.max()) if values.size else (0, 0)
    if image.mode.startswith("I;16") or (image.mode == "I" and 0 <= lo and 255 < hi <= 65535):
        pixels = values.astype(np.uint32) >> 8  # 16-bit
    elif image.mode == "I" and 0 <= lo and hi <= 255:
        pixels = values
    elif image.mode == "F" and 0 <= lo and hi <= 1:
        pixels = np.rint(values * 255.0)
    elif hi > lo:
        pixels = np.rint((values.astype(np.float64) - float(lo)) * (255.0 / (float(hi) - float(lo))))
    else:
        pixels = np.zeros(values.shape)
    return Image.fromarray(pixels.astype(np.uint8))


def fit_image(image, height: int, width: int):
    """Resize so the image covers height x width (the shorter side fits), then crop the centre.

    Parameters
    ----------
    image
        a Pillow image of any size -> a Pillow image of exactly (width, height).
    """
    Image = require_pillow()
    w, h = image.size
    if (w, h) != (width, height):
        scale = max(height / h, width / w)
        size = (max(width, round(w * scale)), max(height, round(h * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
        left, top = round((size[0] - width) / 2), round((size[1] - height) / 2)
        image = image.crop((left, top, left + width, top + height))
    return image


def decode(path, channels: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image file as uint8 pixels (C, H, W).

    Parameters
    ----------
    channels : 1 (gray, ITU-R 601 luma) or 3 (RGB)
    size
        (H, W) to resize and centre-crop to (``fit_image``); None keeps the file's size.
    Raises DataError naming the file when Pillow cannot read it.
    """
    Image = require_pillow()
    from PIL import ImageOps, UnidentifiedImageError

    if channels not in (1, 3):
        raise ConfigError(f"images can be read with 1 (gray) or 3 (RGB) channels, not {channels}")
    try:
        with Image.open(path) as image:
            if size is not None:  # JPEG decodes straight to a smaller scale that still covers
                image.draft(image.mode, (max(size),) * 2)  # size, either way round (EXIF rotation)
            image = _to_mode(ImageOps.exif_transpose(image), channels)
            if size is not None:
                image = fit_image(image, *size)
            array = np.asarray(image, dtype=np.uint8)
    except Image.DecompressionBombError as exc:  # a header promising more pixels than Pillow will decode
        raise DataError(f"{path}: the image is too large to decode ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read it as an image ({exc})") from None
    return np.ascontiguousarray(array[None] if channels == 1 else array.transpose(2, 0, 1))


def read_image(path, shape: tuple[int, int, int], dark_background: bool = False) -> tuple[np.ndarray, bool]:
    """An image file as a (C, H, W) float32 array in [0, 1], converted to the model's input.

    Parameters
    ----------
    path : str or path
        The image file.
    shape : tuple of int, shape (3,)
        The model's (C, H, W); C must be 1 (grayscale) or 3 (RGB). The picture is converted
        to C channels, its shorter side resized and its centre cropped to H x W (``decode``).
    dark_background : bool, default False
        The model takes 1-channel pictures of light things on a dark ground (MNIST's white
        digits). A picture with a light background (dark ink on paper, judged by the mean
        brightness of its border) is then inverted to match. Never applied to colour models.

    Returns
    -------
    image : ndarray, shape (C, H, W)
        float32 in [0, 1].
    inverted : bool
        Whether the picture was inverted.
    """
    channels, height, width = shape
    if channels not in (1, 3):
        raise ConfigError(f"the model takes {channels}-channel images; only 1 (gray) or 3 (RGB) can be read")
    array = decode(path, channels, (height, width)).astype(np.float32) / 255.0
    inverted = False
    if dark_background and channels == 1:
        gray = array[0]
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        inverted = bool(border.mean() > 0.5)
    if inverted:
        array = 1.0 - array
    return np.ascontiguousarray(array), inverted
