"""Shared test settings: hypothesis profiles and a quiet, single-threaded torch.

The default "fast" profile draws the same examples on every run (derandomized), so CI is
reproducible and quick. HYPOTHESIS_PROFILE=thorough draws ten times as many, fresh each run:
use it to hunt for new failures.
"""

import os

import torch
from hypothesis import HealthCheck, settings

# No per-example deadline: the first call of a torch op can take far longer than the rest.
settings.register_profile("fast", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=250, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

# Tiny tensors: threads only add overhead and run-to-run noise.
torch.set_num_threads(1)


def pytest_configure(config):
    # padding="same" with an even kernel makes torch warn that it pads a copy; that is expected.
    config.addinivalue_line("filterwarnings", "ignore:Using padding='same':UserWarning")
