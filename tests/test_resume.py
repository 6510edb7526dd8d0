"""Checkpoints: a run stopped at any point and resumed ends with bit-identical weights.

In process (stopping between or in the middle of epochs) and for real: a `numcnn train`
subprocess killed with SIGKILL after its first checkpoint, then `numcnn train --resume`.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import numcnn as nc
from numcnn import data, optim
from numcnn.errors import ModelFileError
from numcnn.io import atomic_savez, read_npz
from numcnn.train import Trainer, read_checkpoint

from test_train import assert_same_weights, make_trainer


@pytest.fixture(scope="module")
def small():
    (x, y), (xt, yt) = data.load("sample")
    return x[:160], y[:160], xt[:40], yt[:40]


def fit(trainer, small, epochs):
    x, y, xt, yt = small
    augment = data.Compose([data.RandomShift(2), data.RandomHorizontalFlip()])
    return trainer.fit(x, y, epochs, batch_size=32, validation=(xt, yt), augment=augment)


def assert_same_run(a, b):
    assert_same_weights(a.model, b.model)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["hyper"] == sb["hyper"]
    assert sa["arrays"].keys() == sb["arrays"].keys()
    assert all(np.array_equal(sa["arrays"][k], sb["arrays"][k]) for k in sa["arrays"])
    assert a.schedule.state_dict() == b.schedule.state_dict()
    assert a.model.rng_states() == b.model.rng_states()
    for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert a.history[key] == b.history[key], key


def test_resume_between_epochs_is_exact(small, tmp_path):
    straight = make_trainer()
    fit(straight, small, 3)

    first = make_trainer(out_dir=tmp_path)
    fit(first, small, 1)
    resumed = Trainer.resume(tmp_path, progress=False)
    assert resumed.epoch == 1
    fit(resumed, small, 3)
    assert_same_run(straight, resumed)
    assert_same_weights(nc.load(tmp_path / "model.npz"), straight.model)


def test_fit_resume_true_continues_from_the_checkpoint(small, tmp_path):
    straight = make_trainer()
    fit(straight, small, 3)
    fit(make_trainer(out_dir=tmp_path), small, 2)
    again = make_trainer(out_dir=tmp_path, model_seed=99)  # other initial weights: all replaced
    again.fit(*small[:2], 3, batch_size=32, validation=small[2:],
              augment=data.Compose([data.RandomShift(2), data.RandomHorizontalFlip()]), resume=True)
    assert_same_run(straight, again)


def test_an_interrupted_epoch_is_redone_exactly(small, tmp_path, monkeypatch):
    straight = make_trainer()
    fit(straight, small, 3)

    victim = make_trainer(out_dir=tmp_path)
    calls = {"n": 0}
    real_step = victim.optimizer.step

    def step_then_interrupt():
        real_step()  # the weights in memory move on, but never reach the disk
        calls["n"] += 1
        if calls["n"] == 8:  # epoch 2, batch 3
            raise KeyboardInterrupt

    monkeypatch.setattr(victim.optimizer, "step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        fit(victim, small, 3)
    assert read_checkpoint(tmp_path)[1]["epoch"] == 1
    resumed = Trainer.resume(tmp_path, progress=False)
    fit(resumed, small, 3)
    assert_same_run(straight, resumed)


def test_the_checkpoint_holds_every_generator(small, tmp_path):
    trainer = make_trainer(out_dir=tmp_path)
    fit(trainer, small, 1)
    arrays, meta = read_checkpoint(tmp_path)
    assert {"loader", "model", "init"} <= set(meta["rng"])
    assert set(meta["rng"]["model"]) == {"4"}  # the Dropout layer
    assert meta["rng"]["loader"]["bit_generator"] == "PCG64"
    assert meta["epoch"] == 1 and meta["optimizer"]["class"] == "Adam"
    assert meta["schedule"]["class"] == "StepLR"
    assert any(key.startswith("optim/exp_avg/") for key in arrays)
    assert "model/1.running_mean" in arrays


def test_bad_checkpoints_are_model_file_errors(small, tmp_path):
    trainer = make_trainer(out_dir=tmp_path)
    fit(trainer, small, 1)
    arrays, meta = read_npz(tmp_path / "checkpoint.npz")

    other = nc.Sequential(nc.Linear(784, 10))
    wrong_model = Trainer(other, None, optim.SGD(other, lr=0.1), progress=False)
    with pytest.raises(ModelFileError, match="architecture"):
        wrong_model.load_checkpoint(tmp_path / "checkpoint.npz")

    model = make_trainer().model
    wrong_optimizer = Trainer(model, None, optim.SGD(model, lr=0.1), progress=False)
    with pytest.raises(ModelFileError, match="Adam"):
        wrong_optimizer.load_checkpoint(tmp_path / "checkpoint.npz")

    atomic_savez(tmp_path / "bad.npz", arrays, {**meta, "history": {"loss": [1.0]}})
    with pytest.raises(ModelFileError, match="history"):
        make_trainer().load_checkpoint(tmp_path / "bad.npz")
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelFileError):
        read_checkpoint(tmp_path / "garbage.npz")
    nc.save(model, tmp_path / "model_only.npz")
    with pytest.raises(ModelFileError, match="not a numcnn training checkpoint"):
        read_checkpoint(tmp_path / "model_only.npz")


# -- a real crash -------------------------------------------------------------------------------
TRAIN = ["train", "--model", "deep-convnet", "--dataset", "sample", "--limit", "200", "--test-limit", "50",
         "--batch-size", "40", "--epochs", "4", "--augment", "--schedule", "cosine", "--seed", "3",
         "--no-plots", "--no-progress"]


def _numcnn(*args, **kw):
    # One BLAS thread each: two runs side by side on a small machine would otherwise fight over
    # the cores (OpenBLAS threads spin), several times slower. Both runs use the same setting.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "numcnn", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _epoch_of(run: Path):
    try:
        return read_checkpoint(run)[1]["epoch"]
    except ModelFileError:  # not written yet
        return 0


def test_sigkill_then_resume_gives_the_uninterrupted_weights(tmp_path):
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight = _numcnn(*TRAIN, "--out", str(straight_dir))
    victim = _numcnn(*TRAIN, "--out", str(killed_dir))
    deadline = time.monotonic() + 120
    while _epoch_of(killed_dir) < 1:
        assert victim.poll() is None, f"the run ended before its first checkpoint: {victim.communicate()}"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    killed_at = _epoch_of(killed_dir)
    assert killed_at in (1, 2, 3), "the kill must land after a checkpoint and before the run finished"

    resumed = _numcnn("train", "--resume", str(killed_dir), "--no-plots", "--no-progress")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resuming {killed_dir} after epoch {killed_at} of 4" in out
    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err

    a, _ = read_npz(straight_dir / "model.npz")
    b, _ = read_npz(killed_dir / "model.npz")
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    ha, hb = (read_checkpoint(d)[1]["history"] for d in (straight_dir, killed_dir))
    assert ha["val_accuracy"] == hb["val_accuracy"] and hb["epoch"] == [1, 2, 3, 4]
