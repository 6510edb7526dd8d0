"""The training checkpoint file: its format, how it is read back, and what a resume may change.

A checkpoint is one .npz (see ``numcnn.io``): the model's and the optimizer's arrays, and a JSON
record of the rest (epoch, step, history, random states, settings). It is written atomically
with a SHA-256 of its contents, and the checkpoint before it is kept beside it
(``rundir.PREVIOUS_CHECKPOINT``). ``read_checkpoint`` of a run folder reads the newest one that
passes its checks, so a checkpoint damaged after it was written is never resumed from: the run
continues from the one before, and says so, or stops with an error naming both. The run that
continues moves the damaged one aside (``rundir.DAMAGED_CHECKPOINT``) before its first write,
which would otherwise make it the previous checkpoint in place of the good one.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from . import optim
from .errors import ConfigError, ModelFileError, ResumeMismatchError
from .io import atomic_savez, read_npz
from .layers import MSELoss, SoftmaxCrossEntropy
from .model import from_config
from .rundir import CHECKPOINT, DAMAGED_CHECKPOINT, PREVIOUS_CHECKPOINT

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "read_checkpoint", "read_newest", "write_checkpoint",
           "describe_position", "describe_saved",
           "rebuild", "check_resume_settings", "describe_augment"]

CHECKPOINT_FORMAT = "numcnn-checkpoint"
CHECKPOINT_VERSION = 1
LOSSES = {"SoftmaxCrossEntropy": SoftmaxCrossEntropy, "MSELoss": MSELoss}
FIELDS = (("epoch", int), ("history", dict), ("optimizer", dict), ("rng", dict), ("architecture", dict),
          ("config", dict))


def write_checkpoint(run_dir, arrays: dict[str, np.ndarray], meta: dict, last_damaged: bool = False) -> Path:
    """Write run_dir/checkpoint.npz atomically, with its digest; the one it replaces becomes
    run_dir/checkpoint.previous.npz, unless last_damaged (it failed its check when the run
    resumed, see ``read_newest``): then it moves to checkpoint.damaged.npz and the previous
    checkpoint stays. Returns the path written."""
    run_dir = Path(run_dir)
    if last_damaged and (run_dir / CHECKPOINT).exists():
        (run_dir / CHECKPOINT).replace(run_dir / DAMAGED_CHECKPOINT)
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **meta}
    return atomic_savez(run_dir / CHECKPOINT, arrays, meta, digest=True, keep=run_dir / PREVIOUS_CHECKPOINT)


def read_checkpoint(path, warn: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) of a checkpoint file, or of the newest good checkpoint in a run folder.

    A ModelFileError if the file is not a whole numcnn checkpoint; for a folder, only when
    neither its checkpoint nor the previous one is. A warning says when the previous one is
    used, unless not warn (a look at the run by a process that leaves saying it to another).
    """
    arrays, meta, _ = read_newest(path, warn)
    return arrays, meta


def read_newest(path, warn: bool = True) -> tuple[dict[str, np.ndarray], dict, bool]:
    """``read_checkpoint``, and whether the run folder's last checkpoint failed its check (the
    previous one was read instead): ``write_checkpoint(..., last_damaged=True)`` sets it aside."""
    path = Path(path)
    if not path.is_dir():
        return (*_read_file(path), False)
    last, previous = path / CHECKPOINT, path / PREVIOUS_CHECKPOINT
    try:
        return (*_read_file(last), False)
    except ModelFileError as exc:
        if not previous.exists():
            raise
        try:
            arrays, meta = _read_file(previous)
        except ModelFileError as older:
            raise ModelFileError(f"{exc}; and the previous checkpoint: {older}") from None
        if warn:
            warnings.warn(f"{exc}; using the previous checkpoint {previous} ({describe_position(meta)})",
                          stacklevel=3)
        return arrays, meta, last.exists()


def _read_file(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    arrays, meta = read_npz(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: not a numcnn training checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ModelFileError(f"{path}: checkpoint version {meta.get('version')!r}; "
                             f"this numcnn reads {CHECKPOINT_VERSION}")
    for key, kind in FIELDS:
        if not isinstance(meta.get(key), kind):
            raise ModelFileError(f"{path}: checkpoint field {key!r} is missing or not a {kind.__name__}")
    step = meta.get("step", 0)
    if not isinstance(step, int) or step < 0 or (step and not isinstance(meta.get("partial"), dict)):
        raise ModelFileError(f"{path}: checkpoint field 'step' is not a count of batches, or the epoch's "
                             f"totals are missing")
    return arrays, meta


def describe_position(meta: dict) -> str:
    """Where in the run a checkpoint was written: "the end of epoch 2" (or "the start" of a run
    with nothing done), or "epoch 3, step 7" in the middle of an epoch."""
    epoch, step = int(meta["epoch"]), int(meta.get("step", 0))
    if step:
        return f"epoch {epoch + 1}, step {step}"
    return f"the end of epoch {epoch}" if epoch else "the start"


def describe_saved(run_dir) -> str | None:
    """What a run folder holds to resume from: "the checkpoint at epoch 3, step 50 (runs/x)",
    or None if it holds no checkpoint. Read without a warning: the run that resumes says it."""
    run_dir = Path(run_dir)
    if not any((run_dir / name).exists() for name in (CHECKPOINT, PREVIOUS_CHECKPOINT)):
        return None
    try:
        _, meta = read_checkpoint(run_dir, warn=False)
    except ModelFileError:
        return f"the checkpoint in {run_dir}"  # unreadable: the resume's own reading says why
    return f"the checkpoint at {describe_position(meta)} ({run_dir})"


def rebuild(meta: dict, where) -> tuple:
    """(model, loss, optimizer, schedule or None) as a checkpoint's record describes them, new:
    the arrays and states are still to be loaded. ``where`` names the checkpoint in errors."""
    model = from_config(meta["architecture"], f"{where}: architecture")
    hyper = {k: v for k, v in meta["optimizer"].items() if k not in ("class", "step")}
    opt_cls = {c.__name__: c for c in optim.OPTIMIZERS.values()}.get(meta["optimizer"].get("class"))
    loss_cls = LOSSES.get(meta.get("loss", "SoftmaxCrossEntropy"))
    if opt_cls is None or loss_cls is None:
        raise ModelFileError(f"{where}: unknown optimizer {meta['optimizer'].get('class')!r} "
                             f"or loss {meta.get('loss')!r}")
    try:
        optimizer = opt_cls(model, **hyper)
        schedule = None
        if meta.get("schedule") is not None:
            sched = dict(meta["schedule"])
            sched_cls = {c.__name__: c for c in optim.SCHEDULES.values()}.get(sched.pop("class", None))
            if sched_cls is None:
                raise ModelFileError(f"unknown schedule {meta['schedule'].get('class')!r}")
            args = {k: v for k, v in sched.items() if k not in ("last_epoch", "base_lr", "last_lr")}
            schedule = sched_cls(optimizer, **args)
    except (ConfigError, TypeError) as exc:
        raise ModelFileError(f"{where}: cannot rebuild the optimizer or schedule: {exc}") from None
    return model, loss_cls(), optimizer, schedule


def describe_augment(augment) -> str | None:
    """A description of an augmentation that is the same in every process: its repr, with any
    memory address left out (a plain function's repr holds one)."""
    return None if augment is None else re.sub(r" at 0x[0-9A-Fa-f]+", "", repr(augment))


def check_resume_settings(saved: dict, given: dict, run) -> None:
    """Raise ResumeMismatchError if a setting in given differs from the value a run saved.

    Continuing with another batch size, augmentation or shuffling would draw other batches
    than the uninterrupted run, so the result would silently differ from it.

    Parameters
    ----------
    saved : dict
        The run's settings, as its checkpoint recorded them.
    given : dict
        The settings of the attempt to continue it; keys the run did not record are not
        compared (a checkpoint written before they were recorded).
    run : str or path
        The run, as the error message names it.
    """
    differ = [f"{key} {given[key]!r} (the run used {saved[key]!r})"
              for key in given if key in saved and given[key] != saved[key]]
    if differ:
        raise ResumeMismatchError(f"cannot resume {run} with other settings than it was started with: "
                                  f"{'; '.join(differ)}")
