"""Sliding-window geometry shared by im2col, convolution and pooling.

The output-size formula lives here and nowhere else:

::

    OH = (H + PT + PB - DH*(KH-1) - 1) // SH + 1

which for symmetric padding is the textbook's (H + 2P - FH)/S + 1 extended with dilation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..backend import get_array_module
from ..errors import ConfigError, ShapeError
from .layout import copy_rows


def pair(value, name: str, minimum: int = 0) -> tuple[int, int]:
    """Normalise an int or an (h, w) pair of ints, each >= minimum.

    Parameters
    ----------
    value : int or pair of int
        One number for both sides, or (height, width).
    name : str
        The argument's name, for the error message.
    minimum : int, default 0
        The smallest value accepted.

    Returns
    -------
    tuple of int, shape (2,)
        (h, w).

    Raises
    ------
    ConfigError
        If value is not an int or a pair of ints, or is below minimum.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        raise ConfigError(f"{name} must be an int or a pair of ints, got {value!r}")
    value = (int(value[0]), int(value[1]))
    if min(value) < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def resolve_padding(padding, kernel: tuple[int, int], dilation: tuple[int, int],
                    stride: tuple[int, int]) -> tuple[int, int, int, int]:
    """Padding as (top, bottom, left, right).

    An int or an (h, w) pair pads both sides alike; a 4-tuple (top, bottom, left, right) pads
    each side as given (what ONNX's pads and TensorFlow's 'same' come to). "valid" is no
    padding. "same" keeps H and W (stride 1 only, as in PyTorch); when the effective kernel is
    even the extra row/column goes to the bottom/right, as PyTorch pads.

    Parameters
    ----------
    padding : int, pair of int, 4-tuple of int, "valid" or "same"
        The padding as a layer or kernel takes it.
    kernel : tuple of int, shape (2,)
        (KH, KW).
    dilation : tuple of int, shape (2,)
        (DH, DW).
    stride : tuple of int, shape (2,)
        (SH, SW); "same" needs (1, 1).

    Returns
    -------
    tuple of int, shape (4,)
        (top, bottom, left, right).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ConfigError(f"padding='same' needs stride 1, got stride {stride}")
            total_h = dilation[0] * (kernel[0] - 1)
            total_w = dilation[1] * (kernel[1] - 1)
            return (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
        raise ConfigError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        top, bottom = pair(tuple(padding[:2]), "padding (top, bottom)")
        left, right = pair(tuple(padding[2:]), "padding (left, right)")
        return (top, bottom, left, right)
    ph, pw = pair(padding, "padding")
    return (ph, ph, pw, pw)


def output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                dilation: int) -> int:
    """Number of window positions along one axis (the one output-size formula).

    Parameters
    ----------
    size : int
        The input's length on that axis: H or W of an (N, C, H, W) input.
    kernel : int
        The kernel's length on that axis (KH or KW).
    stride : int
        The step between windows.
    pad_before, pad_after : int
        Padding at the start (top or left) and end (bottom or right).
    dilation : int
        The spacing of the kernel's taps.

    Returns
    -------
    int
        OH (or OW) = (size + pad_before + pad_after - dilation*(kernel-1) - 1) // stride + 1.
    """
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


class Window(NamedTuple):
    """Everything a sliding-window kernel needs to know, computed once per call."""

    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    oh: int
    ow: int

    def offsets(self):
        """(i, j, row_slice, col_slice) for each kernel offset, indexing the padded input.

        The slices pick, for kernel tap (i, j), the input pixel under that tap at every output
        position, so a loop over the KH*KW taps replaces loops over pixels.
        """
        for i in range(self.kh):
            rows = slice(i * self.dh, i * self.dh + self.sh * (self.oh - 1) + 1, self.sh)
            for j in range(self.kw):
                cols = slice(j * self.dw, j * self.dw + self.sw * (self.ow - 1) + 1, self.sw)
                yield i, j, rows, cols


def make_window(x_shape: tuple[int, ...], kernel_size, stride=1, padding=0, dilation=1,
                op: str = "im2col") -> Window:
    """Validate the window parameters against an (N, C, H, W) shape and compute the geometry."""
    kh, kw = pair(kernel_size, f"{op}: kernel_size", 1)
    sh, sw = pair(stride, f"{op}: stride", 1)
    dh, dw = pair(dilation, f"{op}: dilation", 1)
    pads = resolve_padding(padding, (kh, kw), (dh, dw), (sh, sw))
    h, w = x_shape[-2], x_shape[-1]
    oh = output_size(h, kh, sh, pads[0], pads[1], dh)
    ow = output_size(w, kw, sw, pads[2], pads[3], dw)
    if oh < 1 or ow < 1:
        raise ShapeError(
            f"{op}: the window does not fit: input {h}x{w} padded by {pads} is smaller than the "
            f"effective kernel {dh * (kh - 1) + 1}x{dw * (kw - 1) + 1}")
    return Window(kh, kw, sh, sw, dh, dw, pads, oh, ow)


def padded_shape(x_shape: tuple[int, ...], pads: tuple[int, int, int, int]) -> tuple[int, ...]:
    """The shape ``pad`` gives: (..., H, W) -> (..., H + PT + PB, W + PL + PR)."""
    top, bottom, left, right = pads
    return (*x_shape[:-2], x_shape[-2] + top + bottom, x_shape[-1] + left + right)


def pad(x: np.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of x; returns x itself when there is nothing to pad.

    Parameters
    ----------
    x
        (..., H, W) -> (..., H + PT + PB, W + PL + PR). Written by hand because np.pad is
    several times slower on these shapes.
    """
    xp = get_array_module(x)
    if not any(pads):
        return x
    out = xp.empty(padded_shape(x.shape, pads), dtype=x.dtype)
    fill_border(out, pads, value)
    copy_rows(interior(out, pads), x)
    return out


def fill_border(out, pads: tuple[int, int, int, int], value: float = 0.0) -> None:
    """Set what ``pad`` adds around out's interior to value. out: (..., Hp, Wp), in place.

    With ``interior`` it splits ``pad`` in two: a kernel that fills a whole padded batch's
    border once can copy each chunk's samples into it with one call.
    """
    top, bottom, left, right = pads
    hp, wp = out.shape[-2:]
    out[..., :top, :] = value
    out[..., hp - bottom:, :] = value
    out[..., top:hp - bottom, :left] = value
    out[..., top:hp - bottom, wp - right:] = value


def interior(out, pads: tuple[int, int, int, int]):
    """The view of a padded out (..., Hp, Wp) that ``pad`` copies x into: (..., H, W)."""
    top, bottom, left, right = pads
    hp, wp = out.shape[-2:]
    return out[..., top:hp - bottom, left:wp - right]


def unpad(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Crop what ``pad`` added: (..., Hp, Wp) -> (..., H, W), as a view."""
    return interior(x, pads)
