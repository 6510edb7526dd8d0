"""Keep freed memory in the process, so that a training step's arrays do not page-fault.

Every training step allocates the same large arrays (activations, padded inputs, gradients)
and frees them again. glibc's malloc hands freed memory at the top of its heap back to the
system once more than a few megabytes are free, and serves arrays above a size threshold
straight from fresh mappings; either way the next step's arrays start as untouched pages,
and the kernel faults in and zeroes every 4 KiB page on first write. On the 2-core machine of
the README that was 1,200-1,800 page faults per DeepConvNet step, about 7% of its time.

``keep_freed_memory()`` asks glibc (``mallopt``) to keep up to ``TRIM_BYTES`` of freed memory
and to serve arrays up to ``MMAP_BYTES`` from its heap, so steps after the first reuse warm
pages. The process's resident size then stays at its peak rather than shrinking between
steps. It is process-wide, so the library never calls it on import: the command line does,
and ``numcnn bench`` does in numcnn's worker processes (in every implementation's with
``--same-malloc``). Elsewhere (macOS, musl, Windows) it does nothing and returns False.
The same settings can be made from the environment before Python starts
(``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``); where any such variable is set, it is
left to rule and nothing is changed here.
"""

from __future__ import annotations

import ctypes
import os
import platform

TRIM_BYTES = 1 << 30   # freed memory kept before any is handed back
MMAP_BYTES = 32 << 20  # arrays up to this size come from the heap (glibc's largest allowed)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers, from glibc's malloc.h
ENV_VARS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (see the module's docstring).

    Returns True where the settings were applied; False on another C library, or where the
    environment already sets malloc's tunables.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in ENV_VARS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # Each returns 1 on success; the threshold set first also stops glibc's own adjustments.
    return (mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES) == 1) & (mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES) == 1)
