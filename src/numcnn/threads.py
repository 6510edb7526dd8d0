"""How many threads numcnn computes with: its own pool, and the BLAS under NumPy, set together.

    numcnn.threads.set_num_threads(4)        # or NUMCNN_NUM_THREADS=4, or `numcnn train --threads 4`

Why numcnn splits work itself rather than leave it to BLAS: OpenBLAS's threads spin while they
wait for work. Two programs that both do so on the same cores spend most of their time
spinning (two trainings started together on 2 cores each ran 6-16x slower than alone, where 2x
is fair), and the copies and elementwise passes around each GEMM get no threads at all. So with
``n > 1`` threads numcnn runs whole batch chunks (the column copy and its GEMM) on ``n``
threads, the calling one and a pool of ``n - 1`` Python threads that sleep while idle, and the
BLAS runs single-threaded inside them.
NumPy releases the GIL in these loops, so the threads really run in parallel.

With one thread (the default for the library; the CLI defaults to every core it may use) the
kernels run serially and the BLAS keeps whatever thread count it had. BLAS threads are set
through threadpoolctl (the scikit-learn project's library for exactly this), an optional
dependency: without it only one thread is available.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

from .errors import ConfigError

ENV_VAR = "NUMCNN_NUM_THREADS"
# Kernels whose pieces are summed cut their work into at least this many, whatever the thread
# count: the threads only decide how many pieces run at once, so results are bit-identical with
# 1 thread or 16. Element-wise passes take one piece per thread (each_share).
PIECES = 8
SMALL = 1 << 16  # elements: below this an elementwise pass stays in the calling thread
MIN_PIECE = 1 << 18  # elements: the least a piece of summed work is given (see pieces)
T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_threads = 1
_pool: ThreadPoolExecutor | None = None
_controller = None  # threadpoolctl.ThreadpoolController, made on first use
_in_pool = threading.local()  # set inside a pool thread: nested calls run serially


def available_cores() -> int:
    """The number of CPUs this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _blas_controller():
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            raise ConfigError("setting thread counts needs threadpoolctl: pip install threadpoolctl "
                              "(it comes with pip install 'numcnn[train]')") from None
        import numpy  # noqa: F401 - the BLAS must be loaded before threadpoolctl looks for it
        _controller = ThreadpoolController()
    return _controller


def parse_threads(value, where: str = "threads") -> int:
    """A thread count from an int or a string such as NUMCNN_NUM_THREADS holds; ConfigError if not >= 1."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if isinstance(value, bool) or n < 1 or (isinstance(value, float) and value != n):
        raise ConfigError(f"{where} must be an int >= 1, got {value!r}")
    return n


def set_num_threads(n: int) -> None:
    """Compute with n threads: numcnn's pool gets n, and the BLAS one (inside each of them).

    The BLAS setting is process-wide (through threadpoolctl), so NumPy code outside numcnn is
    single-threaded too afterwards; call ``set_num_threads(k)`` again to change it.
    """
    global _threads, _pool
    n = parse_threads(n)
    _blas_controller().limit(limits=1, user_api="blas")
    with _lock:
        if _pool is not None and n != _threads:
            _pool.shutdown(wait=True)
            _pool = None
        _threads = n


def get_num_threads() -> int:
    """The number of threads numcnn's kernels split their work over (1: serial)."""
    return _threads


def configure_from_env(default: int | None = None) -> int:
    """Set the thread count from $NUMCNN_NUM_THREADS, else from default (None: leave it).

    Returns the count in force. A default is applied only where threadpoolctl is installed;
    a count the user asked for without it is a ConfigError.
    """
    value = os.environ.get(ENV_VAR)
    if value is not None:
        set_num_threads(parse_threads(value, f"${ENV_VAR}"))
    elif default is not None:
        try:
            set_num_threads(default)
        except ConfigError:  # no threadpoolctl: keep the serial kernels and the BLAS's own threads
            pass
    return _threads


def split(n: int, parts: int) -> list[slice]:
    """Up to ``parts`` contiguous slices of range(n), as equal as can be, none empty."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(parts)]


def run_chunks(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[fn(item) for item in items], on numcnn's thread pool when it has more than one thread.

    Results come back in the order of items. fn must only write to places no other item
    writes to. Called from inside a pool thread (a kernel within a kernel), it runs serially.
    The calling thread works too: it and up to threads - 1 pool threads each take the next
    item until none is left, so a call costs one hand-off per helper, not one per item.
    """
    items = list(items)
    if _threads == 1 or len(items) < 2 or getattr(_in_pool, "active", False):
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
    """Keep work in one piece? Yes when size (the elements it touches) is below SMALL, where
    handing work to threads costs more than it saves, or when it is not on the host (a GPU runs
    it best as one launch)."""
    return not host or (size is not None and size < SMALL)


def pieces(n: int, size: int | None = None, host: bool = True) -> list[slice]:
    """Up to PIECES slices of range(n) (a batch), each touching at least MIN_PIECE of the size
    elements where size is given, or one slice of it all (see ``_whole``).

    Each piece costs a few NumPy calls of microseconds each and its sums, and a thread hand-off:
    batch norm of 128x32x8x8 took 1.5 ms forward in 8 pieces on 2 threads, 0.8 in one."""
    if _whole(size, host):
        return [slice(0, n)]
    return split(n, PIECES if size is None else max(1, min(PIECES, size // MIN_PIECE)))


def each_share(fn: Callable[[slice], object], n: int, size: int | None = None, host: bool = True) -> None:
    """fn(part) for one slice of range(n) per thread, on numcnn's threads, for work whose result
    cannot depend on where it is cut (element-wise passes, pooling); fn writes its results into
    arrays it shares with the caller, each slice into its own part. Fewer, larger pieces than
    ``pieces`` cuts (those are for work whose pieces are summed):
    every NumPy call costs microseconds of its own, which on small layers was most of the time
    (a 2x2 max pool of 100x64x8x8 took 1.9 ms in 8 pieces on 2 threads, 0.9 ms in 2)."""
    if _whole(size, host) or getattr(_in_pool, "active", False):  # in a pool thread: serial anyway
        fn(slice(0, n))
    else:
        run_chunks(fn, split(n, _threads))
