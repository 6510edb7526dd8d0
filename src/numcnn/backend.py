"""The array-module seam: kernels ask their input which library holds it, then read as NumPy code.

::

    xp = get_array_module(x)        # numpy, or cupy for a cupy.ndarray
    out = xp.empty(shape, dtype=x.dtype)

numcnn has no tensor type of its own: arrays stay ``numpy.ndarray`` (or, with CuPy installed,
``cupy.ndarray``), and every kernel allocates through the module of the array it was given, so a
GPU array flows through unchanged. CuPy is never imported unless such an array shows up, or a
caller asks for the ``"cuda"`` device (``to_device``, ``Layer.to``, ``--device cuda``).

Devices are named as PyTorch names them: ``"cpu"`` and ``"cuda"`` (the current GPU), or
``"cuda:N"`` for GPU N.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

from .errors import DeviceError

__all__ = ["get_array_module", "is_array", "to_numpy", "host_copy", "on_host", "check_device", "cuda_module",
           "device_of", "to_device"]


def _is_cupy(array: Any) -> bool:
    # Looking at the type's module costs nothing and never imports CuPy.
    return type(array).__module__.split(".", 1)[0] == "cupy"


def get_array_module(*arrays: Any) -> ModuleType:
    """``cupy`` if any of arrays is a CuPy array, else ``numpy``.

    Parameters
    ----------
    arrays
        any objects; only CuPy arrays change the answer (scalars, None, lists are ignored)
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


def host_copy(array: Any) -> np.ndarray:
    """A new NumPy array with array's values (from the GPU for a CuPy array); same shape and dtype."""
    return array.get() if _is_cupy(array) else np.array(array, copy=True)


def on_host(xp: ModuleType) -> bool:
    """Is xp NumPy (the CPU), so that cache-sized chunks and numcnn's threads pay off?"""
    return xp is np


def check_device(device: Any) -> str:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"``, checked; anything else is a DeviceError naming it."""
    if isinstance(device, str):
        name, colon, index = device.partition(":")
        if device == "cpu" or (name == "cuda" and (not colon or index.isdigit())):
            return device
    raise DeviceError(f"expected a device 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def cuda_module(device: str = "cuda") -> ModuleType:
    """CuPy, once the device's GPU is known to exist; a DeviceError when CuPy or the GPU is
    missing. The current GPU is left as it is.

    The one place numcnn imports CuPy. ``pip install 'numcnn[cuda]'`` names the wheel (see the

    Parameters
    ----------
    README
        ``cupy-cuda12x`` or ``cupy-cuda13x``, to match the driver's CUDA version).
    """
    try:
        import cupy
    except ImportError as exc:
        raise DeviceError(f"device {device!r} needs CuPy, which is not importable ({exc}); "
                          "install the wheel for your CUDA, e.g. pip install cupy-cuda12x") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy raises its own CUDARuntimeError when there is no driver
        raise DeviceError(f"device {device!r}: CuPy finds no usable GPU ({exc})") from None
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise DeviceError(f"device {device!r}: this machine has {count} GPU(s)")
    return cupy


def device_of(array: Any) -> str:
    """The device an array lives on: ``"cpu"`` for NumPy (and anything else), ``"cuda:N"`` for CuPy."""
    return f"cuda:{array.device.id}" if _is_cupy(array) else "cpu"


def to_device(array: Any, device: str) -> Any:
    """array on device: the same object when it is there already, else a copy.

    Parameters
    ----------
    array : a NumPy or CuPy array (any shape and dtype, kept)
    device : "cpu", "cuda" or "cuda:N"
    """
    device = check_device(device)
    if device == "cpu":
        return to_numpy(array)
    cupy = cuda_module(device)
    index = int(device.partition(":")[2] or cupy.cuda.runtime.getDevice())
    if _is_cupy(array) and array.device.id == index:
        return array
    with cupy.cuda.Device(index):
        return cupy.asarray(array)
