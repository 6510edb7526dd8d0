"""A stand-in "cupy" for machines without a GPU: NumPy underneath, its own array type on top.

Its arrays are ``DeviceArray`` (an ndarray subclass whose type says it comes from "cupy", as
``cupy.ndarray`` does), its functions are NumPy's handing back DeviceArrays, and it has the
few pieces of ``cupy.cuda`` that numcnn's device seam touches. Code that keeps its arrays on
the device, allocating through ``get_array_module``, passes with it; code that falls back to
NumPy shows up as host arrays (``type(a) is np.ndarray``), or, inside ``host_forbidden()``, as
an error from NumPy's allocators.
"""

from __future__ import annotations

import contextlib
import sys
import types

import numpy as np
import pytest

SYNCS: list = []  # the shapes of device arrays read on the host, in order (see DeviceArray._sync)
ALLOCATORS = ("empty", "zeros", "ones", "full", "empty_like", "zeros_like", "arange")


class _Device:
    id = 0

    def __init__(self, index: int = 0):
        if index != 0:
            raise RuntimeError(f"the stand-in has one GPU, asked for {index}")

    def use(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class DeviceArray(np.ndarray):
    """An array that says it comes from "cupy", as cupy.ndarray does, and, as CuPy does,
    refuses to compute with a host array: a ufunc (matmul included) given both raises."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        operands = inputs + tuple(kwargs.get("out", ()))
        if any(type(a) is np.ndarray and a.ndim > 0 for a in operands):
            raise TypeError(f"{ufunc.__name__} mixes a host ndarray with a device array")
        plain = [a.view(np.ndarray) if isinstance(a, DeviceArray) else a for a in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(a.view(np.ndarray) if isinstance(a, DeviceArray) else a for a in kwargs["out"])
        result = getattr(ufunc, method)(*plain, **kwargs)
        return tuple(map(_on_device, result)) if isinstance(result, tuple) else _on_device(result)

    # Reading a value on the host waits for the GPU: each such read is counted as a sync.
    def _sync(self):
        SYNCS.append(self.shape)

    def __float__(self):
        self._sync()
        return float(self.view(np.ndarray))

    def __int__(self):
        self._sync()
        return int(self.view(np.ndarray))

    def __bool__(self):
        self._sync()
        return bool(self.view(np.ndarray))

    @property
    def device(self):
        return _Device()

    def get(self) -> np.ndarray:
        self._sync()
        return np.array(self.view(np.ndarray), copy=True)


DeviceArray.__module__ = "cupy"


def _on_device(result):
    """A NumPy result as CuPy gives it: arrays, and 0-d arrays for scalars, on the device."""
    if type(result) is np.ndarray or isinstance(result, np.generic):
        return np.asarray(result).view(DeviceArray)
    return result


def install(monkeypatch) -> types.ModuleType:
    """Put the stand-in in sys.modules["cupy"] for one test; returns the module."""
    real = {name: getattr(np, name) for name in ALLOCATORS}
    module = types.ModuleType("cupy")
    module.calls = []

    def device(name):
        def allocate(*args, **kwargs):
            module.calls.append(name)
            return real[name](*args, **kwargs).view(DeviceArray)
        return allocate

    def host_allocation(*args, **kwargs):
        raise AssertionError("NumPy allocated an array while the work was on the device")

    @contextlib.contextmanager
    def host_forbidden():
        with pytest.MonkeyPatch.context() as patch:
            for name in ALLOCATORS:
                patch.setattr(np, name, host_allocation)
            yield

    def __getattr__(name):
        # Every other function of the stand-in is NumPy's, with its arrays handed back as
        # DeviceArrays, as CuPy's functions hand back CuPy arrays.
        attr = getattr(np, name)
        if not callable(attr) or isinstance(attr, type):
            return attr

        def on_device(*args, **kwargs):
            return _on_device(attr(*args, **kwargs))
        return on_device

    def asarray(value, dtype=None):
        return np.array(value, dtype=dtype, copy=True).view(DeviceArray)

    module.__getattr__ = __getattr__
    for name in ALLOCATORS:
        setattr(module, name, device(name))
    module.asarray = asarray
    module.host_forbidden = host_forbidden
    module.syncs = SYNCS
    SYNCS.clear()
    module.cuda = types.SimpleNamespace(
        Device=_Device,
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, getDevice=lambda: 0))
    monkeypatch.setitem(sys.modules, "cupy", module)
    return module


def device_array(rng, shape, dtype=np.float64) -> DeviceArray:
    return rng.standard_normal(shape).astype(dtype).view(DeviceArray)
