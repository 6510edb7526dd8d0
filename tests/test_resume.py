"""Checkpoints: a run stopped at any point and resumed ends with bit-identical weights.

In process (stopping between or in the middle of epochs) and for real: a training process that
SIGKILLs itself after epoch 2's checkpoint, then `numcnn train --resume`.
"""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import numcnn as nc
from numcnn import data, optim
from numcnn.checkpoint import read_checkpoint
from numcnn.errors import ModelFileError
from numcnn.io import atomic_savez, read_npz
from numcnn.train import Trainer

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
SETTINGS = dict(model="deep-convnet", dataset="sample", limit=200, test_limit=50, batch_size=40, epochs=4,
                augment=True, schedule="cosine", seed=3)
TRAIN = ["train", "--model", "deep-convnet", "--dataset", "sample", "--limit", "200", "--test-limit", "50",
         "--batch-size", "40", "--epochs", "4", "--augment", "--schedule", "cosine", "--seed", "3",
         "--no-plots", "--no-progress"]
KILL_AFTER_EPOCH = 2

# The victim: the recipe `numcnn train` uses, and a hook that SIGKILLs the process itself right
# after epoch k's checkpoint is on disk. The kill lands at the same point on every run, however
# fast or slow the machine, where a timed kill from outside could miss or race the checkpoint.
VICTIM = """
import os, signal, sys
from numcnn import recipe
from numcnn.train import Hook

class KillAfter(Hook):
    def after_epoch(self, trainer):
        if trainer.epoch == {k}:
            os.kill(os.getpid(), signal.SIGKILL)

run = recipe.build({settings!r})
run.fit(run.trainer(sys.argv[1], hooks=[KillAfter()]))
"""


def _subprocess(argv):
    # One BLAS thread each: two runs side by side on a small machine would otherwise fight over
    # the cores (OpenBLAS threads spin), several times slower. Both runs use the same setting.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def _numcnn(*args):
    return _subprocess(["-m", "numcnn", *args])


def test_sigkill_then_resume_gives_the_uninterrupted_weights(tmp_path):
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight = _numcnn(*TRAIN, "--out", str(straight_dir))
    victim = _subprocess(["-c", VICTIM.format(k=KILL_AFTER_EPOCH, settings=SETTINGS), str(killed_dir)])
    _, err = victim.communicate(timeout=300)
    assert victim.returncode == -signal.SIGKILL, err
    assert read_checkpoint(killed_dir)[1]["epoch"] == KILL_AFTER_EPOCH

    resumed = _numcnn("train", "--resume", str(killed_dir), "--no-plots", "--no-progress")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resuming {killed_dir} after epoch {KILL_AFTER_EPOCH} of 4" in out
    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err

    a, _ = read_npz(straight_dir / "model.npz")
    b, _ = read_npz(killed_dir / "model.npz")
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    ha, hb = (read_checkpoint(d)[1]["history"] for d in (straight_dir, killed_dir))
    assert ha["val_accuracy"] == hb["val_accuracy"] and hb["epoch"] == [1, 2, 3, 4]


def test_the_command_line_refuses_to_resume_with_other_settings(tmp_path):
    run = tmp_path / "run"
    first = _numcnn("train", "--model", "mlp", "--dataset", "sample", "--limit", "100", "--test-limit", "20",
                    "--epochs", "2", "--batch-size", "50", "--no-plots", "--no-progress", "--out", str(run))
    first.communicate(timeout=120)
    before = (run / "checkpoint.npz").read_bytes()
    for flags, message in ((["--batch-size", "25"], "batch_size 25 (the run used 50)"),
                           (["--optimizer", "sgd"], "optimizer 'sgd' (the run used 'adam')"),
                           (["--augment"], "augment True (the run used False)")):
        refused = _numcnn("train", "--resume", str(run), *flags)
        out, err = refused.communicate(timeout=120)
        assert refused.returncode == 2, (flags, err)
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert (run / "checkpoint.npz").read_bytes() == before
    same = _numcnn("train", "--resume", str(run), "--batch-size", "50", "--epochs", "3", "--no-plots", "--no-progress")
    out, err = same.communicate(timeout=120)
    assert same.returncode == 0, err
    assert "resuming" in out and read_checkpoint(run)[1]["epoch"] == 3


@pytest.mark.parametrize("schedule", ["warmup-cosine", "cosine"])
def test_extending_a_finished_cosine_run_is_refused_with_the_way_forward(tmp_path, schedule):
    # The cosine ended at a learning rate of 0 at the planned last epoch: more epochs would not train.
    run = tmp_path / "run"
    first = _numcnn("train", "--model", "mlp", "--dataset", "sample", "--limit", "100", "--test-limit", "20",
                    "--epochs", "2", "--batch-size", "50", "--schedule", schedule, "--no-plots", "--no-progress",
                    "--out", str(run))
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert read_checkpoint(run)[1]["history"]["lr"][-1] > 0  # the last planned epoch still learned
    before = (run / "checkpoint.npz").read_bytes()
    refused = _numcnn("train", "--resume", str(run), "--epochs", "4", "--no-plots", "--no-progress")
    out, err = refused.communicate(timeout=120)
    assert refused.returncode == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{schedule} schedule" in err and "ended at epoch 2" in err, err
    assert f"start a new run with --epochs 4 --schedule {schedule}" in err, err
    assert "resuming" not in out
    assert (run / "checkpoint.npz").read_bytes() == before
    # resuming within the plan is still fine: nothing left to train, it reports
    again = _numcnn("train", "--resume", str(run), "--epochs", "2", "--no-plots", "--no-progress")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0 and "test accuracy" in out, err


def test_extending_a_finished_step_schedule_run_still_trains(tmp_path):
    # A step schedule keeps decaying past its plan (x0.1 every third of the planned epochs): allowed.
    run = tmp_path / "run"
    first = _numcnn("train", "--model", "mlp", "--dataset", "sample", "--limit", "100", "--test-limit", "20",
                    "--epochs", "3", "--batch-size", "50", "--schedule", "step", "--no-plots", "--no-progress",
                    "--out", str(run))
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    more = _numcnn("train", "--resume", str(run), "--epochs", "4", "--no-plots", "--no-progress")
    out, err = more.communicate(timeout=120)
    assert more.returncode == 0, err
    lrs = read_checkpoint(run)[1]["history"]["lr"]
    assert len(lrs) == 4 and 0 < lrs[3] < lrs[0]
