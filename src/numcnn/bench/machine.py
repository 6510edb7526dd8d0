"""What a result was measured on: the CPU, the versions, NumPy's BLAS and its thread count."""

from __future__ import annotations

import ctypes
import glob
import importlib
import os
import platform

import numpy as np


def blas_threads() -> tuple[int, str]:
    """(threads NumPy's BLAS uses, how that was found out).

    Asked of the library itself where possible: threadpoolctl, else OpenBLAS's own
    ``openblas_get_num_threads`` in the wheel's bundled library; else the environment
    variables it reads, else the CPUs this process may run on (OpenBLAS's default).
    """
    info = _threadpoolctl_blas()
    if info:
        return int(info["num_threads"]), "threadpoolctl"
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    libs += glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs", "*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                       "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, symbol):
                return int(getattr(lib, symbol)()), symbol
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var]), var
    return _usable_cpus(), "usable CPUs"


def describe() -> dict:
    """The machine and software of this run, for the report."""
    threads, threads_from = blas_threads()
    return {"cpu": _cpu_model(), "isa": cpu_isa(), "machine": platform.machine(), "system": platform.platform(),
            "cpus": os.cpu_count(), "usable_cpus": _usable_cpus(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": _blas_name(), "blas_threads": threads,
            "blas_threads_from": threads_from}


def _threadpoolctl_blas() -> dict | None:
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        return None
    return next((info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"), None)


def _blas_name() -> str:
    info = _threadpoolctl_blas()
    if info:
        return f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture')})"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except (TypeError, KeyError):  # numpy < 1.25 has no mode="dicts"
        return "unknown"


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_isa() -> str:
    """The widest x86 vector instructions the CPU offers ("AVX-512", "AVX2", ...), from its flags."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        flags = []
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2")):
        if flag in flags:
            return name
    return platform.machine() or "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
