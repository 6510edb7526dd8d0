"""Checkpoints inside epochs (``checkpoint_every``), and checkpoints that are never used damaged.

A run stopped at any step and resumed from its last mid-epoch checkpoint ends with the weights,
optimizer state, generators and history of a run never stopped: in process, and for real (a
process that SIGKILLs itself, then ``numcnn train --resume``). A checkpoint damaged after it was
written fails its SHA-256 check and the previous one is used instead, or the reading stops
with an error naming both; a write cut short leaves the old checkpoint as it was.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numcnn.io
from numcnn import data, rundir
from numcnn.checkpoint import read_checkpoint
from numcnn.errors import ConfigError, ModelFileError
from numcnn.io import DIGEST_KEY, META_KEY, read_npz
from numcnn.train import Trainer

from test_resume import assert_same_run
from test_train import make_trainer

AUGMENT = data.Compose([data.RandomShift(2), data.RandomHorizontalFlip()])


@pytest.fixture(scope="module")
def small():
    (x, y), _ = data.load("sample")
    return x[:160], y[:160]  # 5 batches of 32 an epoch


@pytest.fixture(scope="module")
def straight(small):
    """The run nobody stopped: 3 epochs, 15 steps."""
    trainer = make_trainer()
    trainer.fit(*small, 3, batch_size=32, augment=AUGMENT)
    return trainer


def stop_at(trainer, monkeypatch, step: int):
    """Make trainer raise KeyboardInterrupt right after its optimizer's step-th update (the
    weights in memory move on, but never reach the disk)."""
    real_step, calls = trainer.optimizer.step, {"n": 0}

    def step_then_stop():
        real_step()
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.optimizer, "step", step_then_stop)


@pytest.mark.parametrize("stop, saved", [(8, (1, 1)), (10, (1, 4)), (14, (2, 2))])
def test_a_run_stopped_inside_an_epoch_resumes_from_its_last_step_checkpoint_exactly(
        small, straight, tmp_path, monkeypatch, stop, saved):
    victim = make_trainer(out_dir=tmp_path, checkpoint_every=3)  # steps 3, 6, 9, 12 and epoch ends
    stop_at(victim, monkeypatch, stop)
    with pytest.raises(KeyboardInterrupt):
        victim.fit(*small, 3, batch_size=32, augment=AUGMENT)
    meta = read_checkpoint(tmp_path)[1]
    assert (meta["epoch"], meta["step"]) == saved
    assert meta["rng"]["loader_epoch_start"]["bit_generator"] == "PCG64"
    assert meta["partial"]["seen"] == 32 * saved[1]

    resumed = Trainer.resume(tmp_path, progress=False)
    assert (resumed.epoch, resumed.epoch_step) == saved
    resumed.fit(*small, 3, batch_size=32, augment=AUGMENT)
    assert_same_run(straight, resumed)
    assert resumed.history["time"][saved[0]] > 0


def test_step_checkpoints_leave_the_epoch_files_to_whole_epochs(small, tmp_path, monkeypatch):
    trainer = make_trainer(out_dir=tmp_path, checkpoint_every=2)
    stop_at(trainer, monkeypatch, 9)  # epoch 2, step 4: the last checkpoint is step 8's
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(*small, 3, batch_size=32)
    assert read_checkpoint(tmp_path)[1]["global_step"] == 8
    assert json.loads((tmp_path / "history.json").read_text())["epoch"] == [1]  # epoch 1 only
    assert read_npz(tmp_path / "model.npz")[1]["training"]["epochs_done"] == 1


def test_an_epoch_stopped_in_the_middle_must_be_finished(small, tmp_path, monkeypatch):
    trainer = make_trainer(out_dir=tmp_path, checkpoint_every=3)
    stop_at(trainer, monkeypatch, 7)  # the checkpoint: epoch 2, step 1
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(*small, 3, batch_size=32)
    resumed = Trainer.resume(tmp_path, progress=False)
    with pytest.raises(ConfigError, match="middle of epoch 2; train to at least 2 epochs"):
        resumed.fit(*small, 1, batch_size=32)


def test_checkpoint_every_must_be_a_positive_int():
    for bad in (0, -3, 1.5, True):
        with pytest.raises(ConfigError, match="checkpoint_every"):
            make_trainer(checkpoint_every=bad)


# -- damaged checkpoints --------------------------------------------------------------------------
@pytest.fixture
def two_epochs(small, tmp_path):
    """A run folder after 2 epochs: checkpoint.npz (epoch 2) and checkpoint.previous.npz (epoch 1)."""
    make_trainer(out_dir=tmp_path).fit(*small, 2, batch_size=32)
    return tmp_path


def flip_a_byte(path: Path, at: float = 0.5) -> None:
    raw = bytearray(path.read_bytes())
    raw[int(len(raw) * at)] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_each_checkpoint_keeps_the_one_before_it(two_epochs):
    assert read_checkpoint(two_epochs / "checkpoint.npz")[1]["epoch"] == 2
    assert read_checkpoint(two_epochs / "checkpoint.previous.npz")[1]["epoch"] == 1
    assert DIGEST_KEY in np.load(two_epochs / "checkpoint.npz").files
    assert not [p.name for p in two_epochs.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("damage", ["flipped byte", "cut short", "missing"])
def test_a_damaged_checkpoint_is_never_resumed_from_the_previous_one_is(small, two_epochs, damage):
    last = two_epochs / "checkpoint.npz"
    if damage == "flipped byte":
        flip_a_byte(last)
    elif damage == "cut short":  # as a copy or a write that bypassed the atomic rename would leave it
        last.write_bytes(last.read_bytes()[:len(last.read_bytes()) // 2])
    else:
        last.unlink()
    with pytest.warns(UserWarning, match=r"using the previous checkpoint .*checkpoint.previous.npz "
                                         r"\(the end of epoch 1\)"):
        resumed = Trainer.resume(two_epochs, progress=False)
    assert resumed.epoch == 1
    # From epoch 1 on, without augmentation, it is the run make_trainer trains in one go.
    whole = make_trainer()
    whole.fit(*small, 3, batch_size=32)
    resumed.fit(*small, 3, batch_size=32)
    assert_same_run(whole, resumed)


def test_after_a_fallback_the_damaged_checkpoint_is_set_aside_and_never_becomes_the_previous(small, two_epochs):
    last = two_epochs / "checkpoint.npz"
    flip_a_byte(last)
    damaged = last.read_bytes()
    with pytest.warns(UserWarning, match="using the previous checkpoint"):
        resumed = Trainer.resume(two_epochs, progress=False)
    resumed.fit(*small, 2, batch_size=32)  # epoch 2 again: one checkpoint written
    assert (two_epochs / "checkpoint.damaged.npz").read_bytes() == damaged
    assert read_checkpoint(two_epochs / "checkpoint.previous.npz")[1]["epoch"] == 1
    assert read_checkpoint(two_epochs / "checkpoint.npz")[1]["epoch"] == 2


def test_a_folder_with_only_the_previous_checkpoint_holds_a_run(two_epochs):
    for name in ("checkpoint.npz", "model.npz", "history.json"):
        (two_epochs / name).unlink()
    with pytest.raises(ConfigError, match="already holds a run; continue it with --resume"):
        rundir.start(two_epochs)
    rundir.start(two_epochs, overwrite=True)
    assert not (two_epochs / "checkpoint.previous.npz").exists()


def test_when_both_checkpoints_are_damaged_the_error_names_both(two_epochs):
    flip_a_byte(two_epochs / "checkpoint.npz")
    flip_a_byte(two_epochs / "checkpoint.previous.npz", 0.3)
    with pytest.raises(ModelFileError, match=r"checkpoint.npz: .*; and the previous checkpoint: .*previous.npz"):
        read_checkpoint(two_epochs)


def test_contents_that_do_not_match_their_digest_are_refused(two_epochs):
    # A change the zip format's own CRC cannot see: a whole, well-formed file with other numbers.
    path = two_epochs / "checkpoint.npz"
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    key = next(k for k in arrays if k.startswith("model/") and arrays[k].dtype.kind == "f")
    arrays[key] = arrays[key] + 1
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="do not match the SHA-256"):
        read_checkpoint(path)
    meta = json.loads(str(arrays[META_KEY]))
    arrays[key] = arrays[key] - 1
    arrays[META_KEY] = np.array(json.dumps({**meta, "epoch": 5}))
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="do not match the SHA-256"):
        read_checkpoint(path)


def test_a_write_cut_short_leaves_the_old_checkpoint_whole(small, two_epochs, monkeypatch):
    before = (two_epochs / "checkpoint.npz").read_bytes()
    trainer = Trainer.resume(two_epochs, progress=False)

    def savez_then_crash(handle, **arrays):
        handle.write(b"PK\x03\x04 half of a checkpoint")
        raise OSError("no space left on device")

    monkeypatch.setattr(numcnn.io.np, "savez", savez_then_crash)
    with pytest.raises(OSError, match="no space left"):
        trainer.fit(*small, 3, batch_size=32)
    assert (two_epochs / "checkpoint.npz").read_bytes() == before
    assert read_checkpoint(two_epochs)[1]["epoch"] == 2
    assert not [p.name for p in two_epochs.iterdir() if p.name.endswith(".tmp")]


# -- for real: a process killed inside an epoch, then numcnn train --resume ------------------------
TRAIN = ["--model", "simple-convnet", "--dataset", "sample", "--limit", "240", "--test-limit", "60",
         "--batch-size", "60", "--epochs", "2", "--dtype", "float64", "--seed", "2", "--no-plots", "--no-progress"]
VICTIM = """
import os, signal, sys
from numcnn import cli, commands
from numcnn.train import Hook

class KillAt(Hook):  # SIGKILL this process right after the backward of step 7 (epoch 2, batch 3)
    def after_backward(self, trainer):
        if trainer.global_step == 7:
            os.kill(os.getpid(), signal.SIGKILL)

args = cli.build_parser().parse_args(sys.argv[1:])
args.argv = sys.argv[1:]
commands.cmd_train(args, hooks=[KillAt()])
"""


def _run(*argv):
    env = {**os.environ, "NUMCNN_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=300)


def test_a_process_killed_inside_an_epoch_resumes_in_one_process_to_the_same_weights(tmp_path):
    straight = _run("-m", "numcnn", "train", *TRAIN, "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr
    killed = _run("-c", VICTIM, "train", *TRAIN, "--checkpoint-every", "3", "--out", str(tmp_path / "killed"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert read_checkpoint(tmp_path / "killed")[1]["global_step"] == 6

    resumed = _run("-m", "numcnn", "train", "--resume", str(tmp_path / "killed"), "--no-plots", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "after epoch 1 of 2, at step 2 of epoch 2" in resumed.stdout
    a, _ = read_npz(tmp_path / "straight" / "model.npz")
    b, _ = read_npz(tmp_path / "killed" / "model.npz")
    assert a.keys() == b.keys() and a["0.weight"].dtype == np.float64
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-9, atol=0, err_msg=key)
    history = [json.loads((tmp_path / run / "history.json").read_text()) for run in ("straight", "killed")]
    np.testing.assert_allclose(history[1]["loss"], history[0]["loss"], rtol=1e-12)


def test_the_command_line_resumes_from_the_previous_checkpoint_with_a_warning(tmp_path):
    run = tmp_path / "run"
    first = _run("-m", "numcnn", "train", *TRAIN, "--epochs", "1", "--checkpoint-every", "2", "--out", str(run))
    assert first.returncode == 0, first.stderr
    flip_a_byte(run / "checkpoint.npz")
    again = _run("-m", "numcnn", "train", "--resume", str(run), "--no-plots", "--no-progress")
    assert again.returncode == 0, again.stderr
    warned = [line for line in again.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "using the previous checkpoint" in warned[0] and "epoch 1, step 2" in warned[0]
    assert "at step 2 of epoch 1" in again.stdout
    assert read_checkpoint(run)[1]["history"]["epoch"] == [1]
