"""What crosses the wire: an uploaded picture, checked from its header before it is decoded, and
arrays going out as base64 float32 the page reads straight into a Float32Array."""

from __future__ import annotations

import base64
import io

import numpy as np

from ..data.images import require_pillow
from ..errors import DataError

__all__ = ["ImageTooLarge", "MAX_PIXELS", "Upload", "check_image_size", "encode"]


class ImageTooLarge(DataError):
    """An uploaded picture declares more pixels than Pillow's decompression-bomb limit."""


MAX_PIXELS = 50_000_000  # per uploaded picture: a 48-megapixel phone photo, not a poster scan


class Upload(io.BytesIO):
    """Request bytes that read_image can open; named in its error messages."""

    def __str__(self) -> str:
        return "the uploaded image"


def check_image_size(body: bytes) -> tuple[int, int]:
    """(width, height) from the image's header, refusing a decompression bomb before decoding.

    Pillow raises DecompressionBombError above twice ``Image.MAX_IMAGE_PIXELS`` and only warns
    between one and two times it; both are refused here (ImageTooLarge), and so is anything above
    MAX_PIXELS (a 48-megapixel photo passes; each decode runs in its own worker thread, so the
    cap bounds the memory many requests at once can take). A body that is not an image at all
    is a DataError.
    """
    Image = require_pillow()
    from PIL import UnidentifiedImageError

    if not body:
        raise DataError("the request body is empty; send the image file's bytes")
    limit = min(Image.MAX_IMAGE_PIXELS or MAX_PIXELS, MAX_PIXELS)
    try:
        with Image.open(io.BytesIO(body)) as image:  # reads the header only
            width, height = image.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image is too large to decode: {exc}") from None
    except UnidentifiedImageError:
        raise DataError("the request body is not an image Pillow can read (PNG, JPEG, GIF, BMP, TIFF, "
                        "WebP, ...)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"the uploaded image cannot be read: {exc}") from None
    if width * height > limit:
        raise ImageTooLarge(f"the image is too large to decode: {width}x{height} = {width * height:,} pixels, "
                            f"more than the limit of {limit:,}")
    return width, height


def encode(array: np.ndarray) -> dict:
    """An array as {"shape", "dtype": "float32", "data": base64 of little-endian float32, "min", "max"}.

    Four bytes a value (and a third more for base64), against some twenty for JSON numbers;
    the page decodes it straight into a Float32Array.
    """
    values = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(values.shape), "dtype": "float32",
            "data": base64.b64encode(values.tobytes()).decode("ascii"),
            "min": float(values.min()) if values.size else 0.0,
            "max": float(values.max()) if values.size else 0.0}
