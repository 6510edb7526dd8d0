"""Input checks shared by every kernel, so that bad input never surfaces as a NumPy broadcasting error."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import device_of, is_array
from ..errors import DeviceError, DTypeError, ShapeError


def check_float_array(x: Any, layer: str, ndim: int | tuple[int, ...] | None = None,
                      what: str = "input", shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as an ndarray, or raise a typed error naming the layer and what it expected.

    A NumPy or CuPy array is returned as it is, on its own device; anything else (a list, a
    scalar) becomes a NumPy array.

    Parameters
    ----------
    x : array_like
        The value to check, of any shape: an (N, C, H, W) batch, say.
    layer : str
        Who checks, named in the error message (a layer or kernel name).
    ndim : int, tuple of int or None, default None
        The accepted rank(s), or None for any rank.
    what : str, default "input"
        What x is, for the error message ("input", "dout", ...).
    shape : tuple of int or None, default None
        The one accepted shape, or None for any (a gradient must have its output's shape).

    Returns
    -------
    ndarray
        x, of a floating-point dtype.

    Raises
    ------
    DTypeError
        If x is not an array of floats.
    ShapeError
        If its rank or shape is not one of those accepted.
    """
    if not is_array(x):
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise DTypeError(f"{layer}: expected a float ndarray as {what}, got {type(x).__name__}") from exc
    if not np.issubdtype(x.dtype, np.floating):
        raise DTypeError(f"{layer}: expected a floating-point {what} (float32 or float64), got dtype {x.dtype}")
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in ranks:
            want = " or ".join(f"{r}-D" for r in ranks)
            raise ShapeError(f"{layer}: expected a {want} {what}, got shape {x.shape} ({x.ndim}-D)")
    if shape is not None and x.shape != tuple(shape):
        raise ShapeError(f"{layer}: expected {what} of shape {tuple(shape)}, got {x.shape}")
    return x


def check_same_device(op: str, x: Any, **arrays: Any) -> None:
    """DeviceError unless every array given lives on x's device ("cpu" or "cuda:N").

    Kernels compute with the module of their input, so a host input meeting GPU weights (or
    the reverse) would fail deep inside CuPy; this names the two devices instead.
    """
    where = device_of(x)
    for what, array in arrays.items():
        if array is not None and is_array(array) and device_of(array) != where:
            raise DeviceError(f"{op}: the input is on {where} but the {what} on {device_of(array)}; move the "
                              f"model (model.to(...)) or the input (numcnn.backend.to_device) to one device")
