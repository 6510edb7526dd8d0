"""The array-module seam: kernels ask their input which library holds it, then read as NumPy code.

    xp = get_array_module(x)        # numpy, or cupy for a cupy.ndarray
    out = xp.empty(shape, dtype=x.dtype)

numcnn has no tensor type of its own: arrays stay ``numpy.ndarray`` (or, with CuPy installed,
``cupy.ndarray``), and every kernel allocates through the module of the array it was given, so a
GPU array flows through unchanged. CuPy is never imported unless such an array shows up.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np


def _is_cupy(array: Any) -> bool:
    # Looking at the type's module costs nothing and never imports CuPy.
    return type(array).__module__.split(".", 1)[0] == "cupy"


def get_array_module(*arrays: Any) -> ModuleType:
    """``cupy`` if any of arrays is a CuPy array, else ``numpy``.

    arrays : any objects; only CuPy arrays change the answer (scalars, None, lists are ignored)
    """
    for array in arrays:
        if _is_cupy(array):
            return sys.modules["cupy"]  # an existing cupy array means cupy is imported
    return np


def is_array(value: Any) -> bool:
    """Is value an ndarray of NumPy or of CuPy (not a list, scalar or other array-like)?"""
    return isinstance(value, np.ndarray) or (_is_cupy(value) and hasattr(value, "dtype"))


def to_numpy(array: Any) -> np.ndarray:
    """A host NumPy array of ``array`` (a copy from the GPU for a CuPy array, else no copy)."""
    return array.get() if _is_cupy(array) else np.asarray(array)
