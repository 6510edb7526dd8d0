"""Shared test settings: hypothesis profiles, a quiet single-threaded torch (where the oracle is
installed), and every test isolated from the process state the others leave.

The default "fast" profile draws the same examples on every run (derandomized), so CI is
reproducible and quick. HYPOTHESIS_PROFILE=thorough draws ten times as many, fresh each run:
use it to hunt for new failures.
"""

import importlib.util
import os

import pytest
from hypothesis import HealthCheck, settings
from threadpoolctl import ThreadpoolController

from numcnn import runtime

# No per-example deadline: the first call of a torch op can take far longer than the rest.
settings.register_profile("fast", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=250, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

if importlib.util.find_spec("torch") is not None:
    import torch

    # Tiny tensors: threads only add overhead and run-to-run noise.
    torch.set_num_threads(1)

BLAS = ThreadpoolController().select(user_api="blas").lib_controllers


@pytest.fixture(autouse=True)
def isolated_process_state():
    """Each test starts from the library's defaults and leaves the process as it found it:
    numcnn's thread setting, the BLAS's thread counts and the working folder are put back, and
    a test that changed malloc's behaviour in this process fails (run such checks in a
    subprocess)."""
    requested = runtime.describe()["requested"]
    blas = [lib.get_num_threads() for lib in BLAS]
    cwd = os.getcwd()
    runtime.configure(threads="auto")  # unresolved: the test's environment decides
    yield
    os.chdir(cwd)
    runtime.configure(threads=requested)
    for lib, count in zip(BLAS, blas):
        lib.set_num_threads(count)
    assert not runtime.describe()["keep_freed_memory"], "this test changed malloc for the whole process"


def pytest_configure(config):
    # padding="same" with an even kernel makes torch warn that it pads a copy; that is expected.
    config.addinivalue_line("filterwarnings", "ignore:Using padding='same':UserWarning")
