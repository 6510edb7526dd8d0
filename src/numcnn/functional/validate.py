"""Input checks shared by every kernel, so that bad input never surfaces as a NumPy broadcasting error."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import is_array
from ..errors import DTypeError, ShapeError


def check_float_array(x: Any, layer: str, ndim: int | tuple[int, ...] | None = None,
                      what: str = "input") -> np.ndarray:
    """Return ``x`` as an ndarray, or raise a typed error naming the layer and what it expected.

    ndim : the accepted rank(s), or None for any rank.
    A NumPy or CuPy array is returned as it is, on its own device; anything else (a list, a
    scalar) becomes a NumPy array.
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
    return x
