"""numcnn's runtime: how many threads its kernels use, and what happens to freed memory.

::

    import numcnn as nc
    nc.runtime.configure(threads=4)          # or NUMCNN_NUM_THREADS=4, or OMP_NUM_THREADS=4
    with nc.runtime.using(threads=1):        # a setting for one block of code
        model.forward(x)
    print(nc.runtime.describe())             # what is in force, and where it came from

This module is the one place that decides. The library, the command line, the MPI launcher,
``numcnn bench`` and ``numcnn serve`` all go through ``configure``; nothing is set on import.

Threads. The default is ``"auto"``, resolved at the first kernel that could use threads, from
``$NUMCNN_NUM_THREADS``, else ``$OMP_NUM_THREADS`` (as PyTorch reads it), else the cores this
process may run on (its affinity mask and its cgroup's CPU quota). With ``n > 1`` threads numcnn
runs whole batch chunks (a column copy and its GEMM, say) on ``n`` threads: the calling one and
a pool of ``n - 1`` Python threads that sleep while idle. NumPy releases the GIL in its loops,
so they really run in parallel.

The BLAS. OpenBLAS's own threads spin while they wait for work, so a BLAS with threads of its
own inside numcnn's threads would fight them for the cores. While a numcnn kernel runs, the
BLAS is held to one thread; afterwards it gets back the count it had, so other NumPy code in the
process keeps its threads. This goes through threadpoolctl (the scikit-learn project's library
for exactly this), an optional dependency (``numcnn[train]`` brings it): without it ``"auto"``
means one thread, and asking for more is a ConfigError.

Results do not depend on the thread count: work whose pieces are summed is cut into the same
pieces whatever the count (``pieces``), and the count only decides how many run at once.

Memory. ``keep_freed_memory`` (``configure(keep_freed_memory=True)``) asks glibc's malloc to keep
freed memory instead of handing it back, so that arrays made afresh every step land on pages
already mapped. It is process-wide and off by default: the kernels reuse their own scratch
buffers (``scratch``), which removes most of what it would save.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import itertools
import math
import os
import platform
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from .errors import ConfigError

__all__ = ["configure", "using", "describe", "get_num_threads", "set_num_threads", "available_cores",
           "cores_per_process", "parse_threads", "blas_held", "holds_blas", "run_chunks", "pieces", "each_share",
           "split", "scratch", "clear_scratch", "keep_freed_memory", "ENV_VAR", "OMP_VAR", "PIECES", "SMALL",
           "MIN_PIECE", "SCRATCH_BYTES"]

ENV_VAR = "NUMCNN_NUM_THREADS"
OMP_VAR = "OMP_NUM_THREADS"
# Kernels whose pieces are summed cut their work into at least this many, whatever the thread
# count: the threads only decide how many pieces run at once, so results are bit-identical with
# 1 thread or 16.
PIECES = 8
# Element-passes (elements times the passes over them): below this, work stays in the calling
# thread, where a hand-off to another thread (which queues for the GIL) costs more than it saves.
SMALL = 1 << 21
# Elements: the least a piece of summed work is given, so that each piece's fixed cost in
# NumPy calls stays small beside its arithmetic.
MIN_PIECE = 1 << 19
T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_requested: int | str = "auto"   # what configure was given: "auto" or a count
_threads: int | None = None      # the count in force; None until "auto" is resolved
_source = "not resolved yet"     # where _threads came from, for describe()
_pool: ThreadPoolExecutor | None = None
_in_pool = threading.local()     # set inside a pool thread: nested calls run serially
_kept_memory = False


# -- how many threads --------------------------------------------------------------------------
def _cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The CPUs the process's cgroup quota allows (rounded up), or None without a quota.

    cgroup v2 keeps "QUOTA PERIOD" (or "max PERIOD") in cpu.max; v1 keeps the two apart.
    """
    try:
        words = (root / "cpu.max").read_text().split()
    except OSError:
        try:
            words = [(root / "cpu" / name).read_text().strip() for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us")]
        except OSError:
            return None
    try:
        if words[0] in ("max", "-1"):
            return None
        return max(1, math.ceil(int(words[0]) / int(words[1])))
    except (ValueError, IndexError, ZeroDivisionError):
        return None


def available_cores() -> int:
    """The CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return min(cores, quota) if quota else cores


def cores_per_process(processes: int) -> int:
    """The threads each of ``processes`` processes on this host gets when they share its cores."""
    return max(1, available_cores() // max(1, processes))


def parse_threads(value, where: str = "threads") -> int:
    """A thread count from an int or a string such as NUMCNN_NUM_THREADS holds; ConfigError if not >= 1."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if isinstance(value, bool) or n < 1 or (isinstance(value, float) and value != n):
        raise ConfigError(f"{where} must be an int >= 1, got {value!r}")
    return n


def _auto() -> tuple[int, str]:
    """(count, where it came from) for "auto"."""
    value = os.environ.get(ENV_VAR)
    omp = os.environ.get(OMP_VAR, "").split(",")[0].strip()  # "4,2" is OpenMP's nested form
    if value is not None:
        n, source = parse_threads(value, f"${ENV_VAR}"), f"${ENV_VAR}"
    elif omp.isdigit() and int(omp) >= 1:
        n, source = int(omp), f"${OMP_VAR}"
    else:
        n, source = available_cores(), "the cores this process may use"
    if n > 1 and _blas_libraries() is None:
        return 1, "one thread: threadpoolctl is not installed, so the BLAS cannot be held to one thread"
    return n, source


def get_num_threads() -> int:
    """The number of threads numcnn's kernels split their work over (1: serial).

    Under "auto" the first call resolves the count (see the module's docstring).
    """
    global _threads, _source
    if _threads is None:
        with _lock:
            if _threads is None:
                _threads, _source = _auto()
    return _threads


def _set(requested: int | str) -> None:
    global _requested, _threads, _source, _pool
    if requested == "auto":
        count, source = None, "not resolved yet"
    else:
        count, source = parse_threads(requested), "configure(threads=...)"
        if count > 1 and _blas_libraries() is None:
            raise ConfigError("more than one thread needs threadpoolctl, to hold the BLAS to one thread "
                              "inside numcnn's: pip install threadpoolctl (it comes with "
                              "pip install 'numcnn[train]')")
    with _lock:
        if _pool is not None and count != _threads:
            _pool.shutdown(wait=True)
            _pool = None
        _requested, _threads, _source = requested, count, source


def configure(threads: int | str | None = None, keep_freed_memory: bool | None = None) -> None:
    """Set numcnn's runtime policy; an argument left None keeps its setting.

    Parameters
    ----------
    threads
        int >= 1, or "auto" (the default: see the module's docstring)
    keep_freed_memory
        True to have glibc's malloc keep freed memory for reuse (process-wide,
        and it cannot be undone in the process); see ``keep_freed_memory``.

    Raises
    ------
    ConfigError
        For a count that is not an int >= 1, or more than one thread without threadpoolctl.
    """
    if threads is not None:
        _set("auto" if threads == "auto" else parse_threads(threads))
    if keep_freed_memory:
        _keep_freed_memory()


def set_num_threads(n: int) -> None:
    """``configure(threads=n)`` for an int n >= 1, under PyTorch's name for it."""
    _set(parse_threads(n))


@contextlib.contextmanager
def using(threads: int | str) -> Iterator[None]:
    """A thread setting for a block of code, then the one before it again.

    The setting is process-wide while the block runs, so other threads of the process see it.
    """
    before = _requested
    _set("auto" if threads == "auto" else parse_threads(threads))
    try:
        yield
    finally:
        _set(before)


def describe() -> dict:
    """What is in force: threads (resolved now), where the count came from, what was asked
    for, the BLAS libraries with their own thread counts, and the malloc setting."""
    count = get_num_threads()
    libraries = _blas_libraries()
    blas = [] if libraries is None else [
        {"library": lib.internal_api, "threads": lib.num_threads, "version": lib.version} for lib in libraries]
    return {"threads": count, "source": _source, "requested": _requested, "cores": available_cores(),
            "blas": blas, "keep_freed_memory": _kept_memory}


# -- the BLAS, held to one thread while numcnn's threads run -------------------------------------
_blas = None            # threadpoolctl's controllers of the loaded BLAS libraries; [] if none
_blas_depth = 0         # parallel regions running now
_blas_saved: list[int] = []


def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded now (None without threadpoolctl)."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas


def _hold_blas() -> list | None:
    """Hold the BLAS to one thread while a kernel runs (nested holds count); returns what
    ``_release_blas`` needs, or None where there is nothing to hold (no threadpoolctl)."""
    global _blas_depth, _blas_saved
    libraries = _blas_libraries()
    if not libraries:
        return None
    with _lock:
        if _blas_depth == 0:
            _blas_saved = [lib.get_num_threads() for lib in libraries]
            for lib, count in zip(libraries, _blas_saved):
                if count != 1:
                    lib.set_num_threads(1)
        _blas_depth += 1
    return libraries


def _release_blas(libraries: list | None) -> None:
    global _blas_depth
    if libraries is None:
        return
    with _lock:
        _blas_depth -= 1
        if _blas_depth == 0:
            for lib, count in zip(libraries, _blas_saved):
                if count != 1:
                    lib.set_num_threads(count)


@contextlib.contextmanager
def blas_held() -> Iterator[None]:
    """Inside the block the BLAS runs on one thread; after the outermost block it has its own
    count back. numcnn's threads are then the only ones its kernels compute with, so one
    thread means serial, and results are the same for every count."""
    held = _hold_blas()
    try:
        yield
    finally:
        _release_blas(held)


def holds_blas(kernel: Callable[..., R]) -> Callable[..., R]:
    """Decorate a kernel that calls the BLAS: it runs inside ``blas_held``.

    Held for the whole kernel, not only around its pieces: a BLAS call between them on two
    threads would leave OpenBLAS's threads spinning while numcnn's pool works.
    """
    @functools.wraps(kernel)
    def held(*args, **kwargs):
        token = _hold_blas()
        try:
            return kernel(*args, **kwargs)
        finally:
            _release_blas(token)
    return held


# -- running pieces on the threads ---------------------------------------------------------------
def split(n: int, parts: int) -> list[slice]:
    """Up to ``parts`` contiguous slices of range(n), as equal as can be, none empty."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(parts)]


def run_chunks(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[fn(item) for item in items], on numcnn's threads when there are more than one.

    Results come back in the order of items. fn must only write to places no other item
    writes to. Called from inside a pool thread (a kernel within a kernel), it runs serially.
    The calling thread works too: it and up to threads - 1 pool threads each take the next
    item until none is left, so a call costs one hand-off per helper, not one per item.
    """
    items = list(items)
    if len(items) < 2 or getattr(_in_pool, "active", False) or get_num_threads() == 1:
        return [fn(item) for item in items]
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_threads - 1, thread_name_prefix="numcnn")
        pool, helpers = _pool, min(_threads, len(items)) - 1
    results: list = [None] * len(items)
    next_index = itertools.count()  # next() on it is atomic under the GIL
    failed = threading.Event()

    def drain():
        was_active = getattr(_in_pool, "active", False)
        _in_pool.active = True
        try:
            for i in next_index:
                if i >= len(items) or failed.is_set():
                    return
                results[i] = fn(items[i])
        except BaseException:
            failed.set()  # the others stop taking items
            raise
        finally:
            _in_pool.active = was_active

    with blas_held():
        # Each helper runs in a copy of the caller's context, so settings held in context
        # variables (NumPy's errstate among them) hold in the pool's threads as in the caller's.
        futures = [pool.submit(contextvars.copy_context().run, drain) for _ in range(helpers)]
        try:
            drain()
        finally:
            # A helper that has not started yet is cancelled (nothing is left for it); one that
            # has is waited for: never return, or raise, while a helper still writes.
            started = [future for future in futures if not future.cancel()]
            for future in started:
                future.exception()
    for future in started:
        future.result()
    return results


def _whole(size: int | None, host: bool) -> bool:
    """Keep work in one piece? Yes when size (elements times the passes over them) is below
    SMALL, or when it is not on the host (a GPU runs it best as one launch)."""
    return not host or (size is not None and size < SMALL)


def pieces(n: int, size: int | None = None, host: bool = True) -> list[slice]:
    """Up to PIECES slices of range(n) (a batch), each touching at least MIN_PIECE of the size
    elements where size is given, or one slice of it all (see ``_whole``). The cut depends on
    n and size only, never on the thread count."""
    if _whole(size, host):
        return [slice(0, n)]
    return split(n, PIECES if size is None else max(1, min(PIECES, size // MIN_PIECE)))


def each_share(fn: Callable[[slice], object], n: int, size: int | None = None, host: bool = True) -> None:
    """fn(part) for one slice of range(n) per thread, for work whose result cannot depend on
    where it is cut (element-wise passes, pooling); fn writes each slice's results into its own
    part of arrays it shares with the caller. One piece per thread, since every NumPy call
    costs microseconds of its own; one piece in all where size (elements times passes) is
    below SMALL."""
    if _whole(size, host) or getattr(_in_pool, "active", False) or get_num_threads() == 1:
        fn(slice(0, n))
    else:
        run_chunks(fn, split(n, _threads))


# -- scratch buffers -----------------------------------------------------------------------------
SCRATCH_BYTES = 256 << 20  # per thread: the most scratch kept between calls
_scratch = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype, xp=np):
    """An uninitialised array of shape and dtype for a kernel's temporary, reused by the next
    call on this thread that asks for the same name, shape and dtype.

    A kernel calls this only for an array that does not outlive the call (columns, a padded
    copy, a widened gradient): the next call overwrites it. Reuse spares the allocator, which
    hands large freed blocks back to the system, and the page faults of touching them anew.
    GPU arrays are not kept (CuPy has its own pool).
    """
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    kept = getattr(_scratch, "arrays", None)
    if kept is None:
        kept = _scratch.arrays = {}
    key = (name, tuple(shape), np.dtype(dtype).str)
    array = kept.pop(key, None)  # popped, then put back last: the dict keeps use order
    if array is None:
        array = np.empty(shape, dtype=dtype)
        total = sum(a.nbytes for a in kept.values()) + array.nbytes
        while kept and total > SCRATCH_BYTES:  # drop the longest unused
            total -= kept.pop(next(iter(kept))).nbytes
    if array.nbytes <= SCRATCH_BYTES:
        kept[key] = array
    return array


def clear_scratch() -> None:
    """Drop this thread's scratch buffers (the memory goes back to the allocator)."""
    _scratch.arrays = {}


# -- freed memory ------------------------------------------------------------------------------
TRIM_BYTES = 1 << 30   # freed memory kept before any is handed back
MMAP_BYTES = 32 << 20  # arrays up to this size come from the heap (glibc's largest allowed)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers, from glibc's malloc.h
MALLOC_ENV_VARS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")


def _keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep up to TRIM_BYTES of freed memory and to serve arrays up to
    MMAP_BYTES from its heap, so that steps after the first reuse pages already mapped.

    Process-wide: the resident size stays at its peak. Returns True where the settings were
    applied; False on another C library, or where the environment already sets malloc's
    tunables (``MALLOC_TRIM_THRESHOLD_`` and the like), which then rule.
    """
    global _kept_memory
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in MALLOC_ENV_VARS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # Each returns 1 on success; the threshold set first also stops glibc's own adjustments.
    _kept_memory = (mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES) == 1) & (mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES) == 1)
    return _kept_memory


keep_freed_memory = _keep_freed_memory  # public under its own name; configure() takes a flag of that name
