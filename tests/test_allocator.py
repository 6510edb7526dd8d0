"""numcnn.allocator: after keep_freed_memory(), an array allocated again reuses warm pages.

Each check runs in a fresh interpreter: the setting is process-wide and would leak into the
rest of the suite."""

import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Page faults of the second of two 3 MiB arrays allocated, written and freed in turn (below
# NumPy's 4 MiB huge-page threshold, so pages are 4 KiB: 768 of them).
PROBE = """
import resource, sys
import numpy as np
from numcnn.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
def faults_of_one_array():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.empty(3 << 18, np.float32)
    a.fill(1.0)
    del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_one_array()
print(applied, faults_of_one_array(), faults_of_one_array())
"""


def probe(mode: str, env=None):
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    return out[0], int(out[1]), int(out[2])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's; elsewhere keep_freed_memory does nothing")
def test_kept_memory_is_reused_without_page_faults():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    applied, second, third = probe("keep", env)
    assert applied == "True"
    assert second < 100 and third < 100  # of 768 pages
    # The control: glibc's defaults hand the memory back, and the next array faults again.
    _, second, _ = probe("default", env)
    assert second > 500


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's; elsewhere keep_freed_memory does nothing")
def test_malloc_settings_in_the_environment_are_left_to_rule():
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="131072")
    assert probe("keep", env)[0] == "False"


def test_elsewhere_it_does_nothing(monkeypatch):
    from numcnn import allocator

    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert allocator.keep_freed_memory() is False
