"""Measurement inside one worker process: wall time of repeated calls, peak memory, GEMM peak."""

from __future__ import annotations

import ctypes
import gc
import time

import numpy as np


def time_calls(run, warmup: int, repeat: int, sync=None) -> list[float]:
    """Seconds of each of ``repeat`` calls of run(), after ``warmup`` untimed ones.

    Parameters
    ----------
    sync
        on a GPU, waits for the queued work (called inside each timed call, before the
        clock stops, so the kernels' time is measured and not only their queueing)
    The garbage collector is paused so that a collection of someone else's garbage never lands
    inside a timed call; each result is dropped before the next call starts.
    """
    times = []
    gc.collect()
    gc.disable()
    try:
        for i in range(warmup + repeat):
            start = time.perf_counter()
            result = run()
            if sync is not None:
                sync()
            elapsed = time.perf_counter() - start
            result = None  # noqa: F841 - free the outputs before the next call allocates its own
            if i >= warmup:
                times.append(elapsed)
    finally:
        gc.enable()
    return times


def gemm_call(dtype, n: int, gpu=None):
    """A call of one n x n x n matmul into a preallocated output: 2 n^3 flops, the most this
    machine's BLAS (or with gpu, ``bench.gpu.NumcnnGPU``, cuBLAS through CuPy) can do, against
    which the convolutions are measured."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    xp = np if gpu is None else gpu.cupy
    if gpu is not None:
        a, b = gpu.to(a), gpu.to(b)
    out = xp.empty((n, n), dtype=dtype)
    return lambda: xp.matmul(a, b, out=out)


# -- memory (Linux /proc; elsewhere the reading is None) -----------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakRSS:
    """Context manager: ``.mib`` is the peak resident memory above the level at entry, in MiB.

    On entry freed heap pages go back to the OS (malloc_trim) and the kernel's high-water mark
    is reset to the current RSS; on exit the mark is read. Nothing runs during the block, so
    timing is unaffected. ``.mib`` stays None where /proc cannot do this.
    """

    def __enter__(self):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self.mib, self._base = None, _status_kb("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # Linux >= 4.0: reset VmHWM to the current RSS
        except OSError:
            self._base = None
        return self

    def __exit__(self, *exc):
        peak = _status_kb("VmHWM")
        if self._base is not None and peak is not None:
            self.mib = max(0, peak - self._base) / 1024
