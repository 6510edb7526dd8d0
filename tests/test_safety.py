"""Nothing a user saved may be lost, and a mistake is one error line: outputs that would
replace an input or an existing file, run folders holding a run, plots of an old run, file
modes, one-class folders, out-of-range ports and image sizes, running out of memory."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import numcnn as nc
from numcnn import cli, recipe
from numcnn.data import folder as folders
from numcnn.errors import ConfigError, DataError
from numcnn.io import atomic_savez, atomic_write_bytes
from numcnn.viz import PLOTS


def run(capsys, *argv):
    """(exit status, stderr) of the command line; stderr must be one `error:` line on failure."""
    status = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    if status != 0:
        assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return status, err


def small_model(path):
    model = nc.Sequential(nc.Flatten(), nc.Linear(12, 3), input_shape=(3, 2, 2))
    return Path(model.save(path))


# -- file modes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_writes_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        written = [atomic_write_bytes(tmp_path / "history.json", b"{}"),
                   atomic_savez(tmp_path / "model.npz", {"w": np.zeros(2)}, {})]
    finally:
        os.umask(old)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
