"""The training loop: mini-batches, evaluation, checkpoints that resume bit for bit.

::

    trainer = Trainer(model, SoftmaxCrossEntropy(), Adam(model, lr=1e-3), seed=0, out_dir="runs/x")
    history = trainer.fit(x_train, y_train, epochs=3, batch_size=100, validation=(x_test, y_test))
    trainer.evaluate(x_test, y_test)       # {"loss": ..., "accuracy": ...}

Resuming is exact. After every epoch (and every ``checkpoint_every`` steps, with the place in
the epoch and its running totals) the trainer writes ``out_dir/checkpoint.npz`` holding all the
rest depends on: weights and buffers, the optimizer's and the schedule's state, the loader's,
every dropout layer's and numcnn's default generators, the epoch count and the history.
``Trainer.resume(out_dir)`` (or ``fit(..., resume=True)``) restores it, so a run killed anywhere
and resumed ends with exactly the weights of one never interrupted. Each file is written to a
temporary name, fsynced and renamed, with a SHA-256 that catches later damage
(``numcnn.checkpoint``).

Training runs where the model is (``model.to("cuda")``): each batch goes from the host to the
model's device and is converted there; checkpoints hold host arrays, so a run saved on a GPU
resumes on the CPU and the reverse.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import init
from .backend import get_array_module
from .checkpoint import check_resume_settings, describe_augment, read_newest, rebuild, write_checkpoint
from .errors import ConfigError, DataError, DivergenceError, ModelFileError, ResumeMismatchError
from .functional.loss import check_labels
from .io import atomic_write_bytes
from .layers import SoftmaxCrossEntropy
from .inference import count_correct, evaluate, predict_proba, to_model_device
from .model import load_state_dict, save, state_dict, to_config
from .rundir import CHECKPOINT, HISTORY, MODEL, PREVIOUS_CHECKPOINT, start

__all__ = ["Trainer", "Hook", "write_json_atomic"]

HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time")


def write_json_atomic(path, obj) -> Path:
    """Write obj as JSON to path via a fsynced temporary file and a rename (never half a file)."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def _split(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


@dataclass
class EpochProgress:
    """How far the epoch in progress has come: batches done (``step``), samples seen, their loss
    sum and correct count, seconds of training, and the learning rate the epoch started with."""

    step: int = 0
    seen: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    time: float = 0.0
    lr: float = 0.0


class Hook:
    """Code the Trainer runs at two fixed points; subclass it and override what you need:
    ``after_backward(trainer)`` once every gradient of the step is in place and before the
    optimizer steps (the seam for reducing gradients across processes, clipping or logging
    them), ``after_epoch(trainer)`` once the epoch's history row and checkpoint are written."""

    def after_backward(self, trainer: "Trainer") -> None:
        pass

    def after_epoch(self, trainer: "Trainer") -> None:
        pass


class Trainer:
    """Trains a model with a loss and an optimizer, one mini-batch at a time.

    ``epoch`` counts the completed epochs, ``epoch_step`` the batches done in the epoch in
    progress, ``global_step`` the steps of the whole run (during a step, its own number).

    Parameters
    ----------
    model : Layer
        The model, usually a Sequential.
    loss
        SoftmaxCrossEntropy() for classification (MSELoss works; accuracy is then argmax vs argmax)
    optimizer : Optimizer
        A numcnn.optim optimizer built on this model.
    schedule
        a numcnn.optim schedule on that optimizer, stepped after every epoch
        (``schedule_per="epoch"``) or every batch (``"batch"``), or None
    seed
        seeds the loader's generator (shuffle order, augmentations) and every dropout
        layer's generator, so two trainers with the same seed train identically
    out_dir
        folder for checkpoint.npz, history.json and model.npz, written after every epoch; a
        new run refuses one that holds a run (``rundir.start``), unless overwrite
    overwrite : bool
        let a new run replace the run in out_dir (its checkpoints and plots go first)
    progress
        show a tqdm bar per epoch on stderr (loss, accuracy, images/s)
    log
        called with a one-line summary after each epoch, e.g. ``print``; None is silent
    config
        JSON-friendly description of the run (model name, dataset, ...) kept in the
        checkpoint and model.npz, so a run can be resumed or re-plotted from its folder
    hooks
        ``Hook`` objects run after every backward and after every epoch, in order
    checkpoint_every
        with an out_dir, also write the checkpoint every this many steps (optimizer
        updates, counted over the run), in the middle of epochs; None: after epochs only
    """

    def __init__(self, model, loss=None, optimizer=None, schedule=None, seed: int = 0, out_dir=None,
                 progress: bool = True, log: Callable[[str], Any] | None = None,
                 config: dict | None = None, schedule_per: str = "epoch", hooks: Iterable[Hook] = (),
                 checkpoint_every: int | None = None, overwrite: bool = False):
        if optimizer is None:
            raise ConfigError("Trainer: an optimizer is required, e.g. numcnn.optim.Adam(model, lr=1e-3)")
        if getattr(optimizer, "model", model) is not model:
            raise ConfigError("Trainer: the optimizer was built on another model")
        if schedule is not None and getattr(schedule, "optimizer", optimizer) is not optimizer:
            raise ConfigError("Trainer: the schedule was built on another optimizer")
        if schedule_per not in ("epoch", "batch"):
            raise ConfigError(f"Trainer: schedule_per must be 'epoch' or 'batch', got {schedule_per!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"Trainer: seed must be an int >= 0, got {seed!r}")
        if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(
                checkpoint_every, (int, np.integer)) or checkpoint_every < 1):
            raise ConfigError(f"Trainer: checkpoint_every must be an int >= 1 or None, got {checkpoint_every!r}")
        self.model = model
        self.loss = loss if loss is not None else SoftmaxCrossEntropy()
        self.optimizer = optimizer
        self.schedule = schedule
        self.schedule_per = schedule_per
        self.seed = int(seed)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.overwrite = bool(overwrite)
        self._claimed: Path | None = None  # the out_dir holding this trainer's run (claimed, or loaded)
        self.progress = progress
        self.log = log
        self.config = dict(config or {})
        self.hooks = list(hooks)
        self.checkpoint_every = int(checkpoint_every) if checkpoint_every is not None else None
        for hook in self.hooks:
            if not isinstance(hook, Hook):
                raise ConfigError(f"Trainer: hooks must be numcnn.train.Hook objects, got {type(hook).__name__}")
        self.epoch = 0  # completed epochs
        self.epoch_step = 0
        self.global_step = 0
        self._in_progress: EpochProgress | None = None  # the epoch a checkpoint stopped in, or being committed
        self._epoch_start: dict | None = None  # the loader generator's state when that epoch began
        self.history: dict[str, list] = {key: [] for key in HISTORY_KEYS}
        # One seed each for the loader and the dropout layers, derived from the run's seed.
        loader_seed, dropout_seed = np.random.SeedSequence(self.seed).generate_state(2, np.uint64)
        self._loader_seed = int(loader_seed)
        self._loader_state: dict | None = None  # the loader generator's state after the last epoch
        self._checkpoint_fit: dict | None = None  # fit() settings of the run a checkpoint came from
        self._last_damaged = False  # resumed from the previous checkpoint: set the last aside at the next write
        self.model.seed(int(dropout_seed))

    # -- training -------------------------------------------------------------------------------
    def fit(self, x, y, epochs: int, batch_size: int = 100, validation=None, augment=None,
            shuffle: bool = True, resume: bool = False) -> dict[str, list]:
        """Train until ``epochs`` epochs are complete; returns the history (dict of lists).

        Parameters
        ----------
        x, y
            (N, C, H, W) float images in [0, 1] (or uint8 pixels, converted a batch at a
            time) and (N,) int labels (or (N, K) targets)
        epochs
            the total number of epochs of the run. A fresh trainer trains that many;
            one that already completed some (a resumed run) trains the rest.
        validation : tuple of ndarray, optional
            (x_val, y_val), evaluated after each epoch, or None
        augment : callable, optional
            (xb, rng) -> xb, e.g. numcnn.data.RandomShift(2)
        resume
            first load the checkpoint in out_dir if there is one (the previous one if the last
            fails its check); it may stop in the middle of an epoch, which is then finished

        Returns
        -------
        dict
            The history, a list per key, one entry per epoch: epoch, loss, accuracy (training
            batches, in train mode), val_loss, val_accuracy (None without validation), lr (at
            the epoch's start), time (s of training, validation excluded).

        Raises
        ------
        DivergenceError
            When a loss is NaN or infinite (or an update makes a weight so): nothing of that
            epoch is saved past its last good checkpoint, which stays as it was.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ConfigError(f"epochs must be an int >= 1, got {epochs!r}")
        if validation is not None and (not isinstance(validation, (tuple, list)) or len(validation) != 2):
            raise ConfigError("validation must be an (x_val, y_val) pair or None")
        if resume:
            if self.out_dir is None:
                raise ConfigError("fit(resume=True) needs the trainer's out_dir")
            if (self.out_dir / CHECKPOINT).exists() or (self.out_dir / PREVIOUS_CHECKPOINT).exists():
                self.load_checkpoint(self.out_dir)
        if len(x) == 0:
            raise DataError("fit: got no training samples")
        loader = self.make_loader(x, y, batch_size, shuffle=shuffle, seed=self._loader_seed, augment=augment)
        fit_args = {"batch_size": int(batch_size), "shuffle": bool(shuffle), "augment": describe_augment(augment)}
        if self._checkpoint_fit is not None:
            check_resume_settings(self._checkpoint_fit, fit_args, self.out_dir or "the checkpoint")
        if self._loader_state is not None:
            loader.rng.bit_generator.state = self._loader_state
        self._continue_epoch(loader, epochs)
        if self.out_dir is not None and self._claimed != self.out_dir:  # checked all else first
            start(self.out_dir, self.overwrite, api=True)  # a new run never silently replaces a saved one
            self._claimed = self.out_dir
        self._fit_args = {**fit_args, "epochs": int(epochs)}
        self.optimizer.to(self.model.device)  # state made before a model.to() follows it

        # NumPy's overflow warnings would only precede our own, clearer DivergenceError.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while self.epoch < epochs:
                self._train_epoch(loader, epochs, validation)
        return self.history

    def _continue_epoch(self, loader, epochs: int) -> None:
        """Set the step counters; after a checkpoint taken in the middle of an epoch, have the
        loader finish that epoch from where it stopped."""
        step = self._in_progress.step if self._in_progress is not None else 0
        if step and self.epoch >= epochs:
            raise ConfigError(f"epochs {epochs}: the checkpoint stopped in the middle of epoch {self.epoch + 1}; "
                              f"train to at least {self.epoch + 1} epochs to finish it")
        if step:
            if not step < len(loader):
                raise ResumeMismatchError(f"the checkpoint stopped after batch {step} of an epoch, but an epoch "
                                          f"of this data has {len(loader)} batches")
            loader.place.resume(self._epoch_start, step)
        self.epoch_step, self.global_step = step, self.epoch * len(loader) + step

    def make_loader(self, x, y, batch_size: int, shuffle: bool, seed: int, augment):
        """The epoch's mini-batches: a ``numcnn.data.DataLoader`` (the seam where a subclass
        shards them, e.g. ``numcnn.distributed``). It must keep its generator in ``.rng`` and
        its ``EpochPlace`` in ``.place``."""
        from .data import DataLoader

        # uint8 images stay uint8 until each batch reaches the model's device (unless an
        # augmentation, which works on floats, needs them earlier).
        return DataLoader(x, y, batch_size, shuffle=shuffle, seed=seed, augment=augment,
                          as_float=augment is not None)

    def epoch_totals(self, seen: int, loss_sum: float, correct: int) -> tuple[int, float, int]:
        """The epoch's sample count, loss sum and correct count for its history row: this
        process's own here; a subclass sums them over processes."""
        return seen, loss_sum, correct

    def _train_epoch(self, loader, epochs: int, validation) -> None:
        epoch = self.epoch + 1
        done, self._in_progress = self._in_progress or EpochProgress(lr=float(self.optimizer.lr)), None
        lr = done.lr
        bar = self._progress_bar(len(loader), f"epoch {epoch}/{epochs}", initial=done.step)
        self.model.train()
        seen, loss_sum, correct = done.seen, done.loss_sum, done.correct
        start = time.perf_counter() - done.time
        try:
            for step, (xb, y_host) in enumerate(loader, start=done.step + 1):
                self.epoch_step, self.global_step = step, self.global_step + 1
                xb, yb = to_model_device(self.model, xb, y_host)
                self.optimizer.zero_grad()
                logits = self.model.forward(xb)
                if yb is not y_host:  # on a GPU the loss kernel leaves the labels' check to us
                    check_labels(y_host, logits.shape[-1], type(self.loss).__name__)
                loss = float(self.loss.forward(logits, yb))  # on a GPU, the step's one host sync
                if not math.isfinite(loss):
                    self._diverged(epoch, step, loss, f"loss {loss}")
                self.model.backward_params(self.loss.backward())
                for hook in self.hooks:
                    hook.after_backward(self)
                self.optimizer.step()
                if self.schedule is not None and self.schedule_per == "batch":
                    self.schedule.step()
                n = len(xb)
                seen += n
                loss_sum += loss * n
                correct = correct + count_correct(logits, yb)  # read once per epoch, or by the bar
                if self.checkpoint_every and self.global_step % self.checkpoint_every == 0 and step < len(loader):
                    self._commit(loader, EpochProgress(step, seen, loss_sum, int(correct),
                                                       time.perf_counter() - start, lr))
                if bar is not None:
                    rate = seen / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{int(correct) / seen:.4f}",
                                    img_s=f"{rate:.0f}", refresh=False)
                    bar.update(1)
            elapsed = time.perf_counter() - start
            correct = int(correct)
            self._check_weights(epoch, step)
            val = self.evaluate(*validation) if validation is not None else None
            if bar is not None and val is not None:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                                img_s=f"{seen / elapsed:.0f}", val_acc=f"{val['accuracy']:.4f}")
        finally:
            if bar is not None:
                bar.close()
        if self.schedule is not None and self.schedule_per == "epoch":
            self.schedule.step()

        seen, loss_sum, correct = self.epoch_totals(seen, loss_sum, correct)
        row = {"epoch": epoch, "loss": loss_sum / seen, "accuracy": correct / seen,
               "val_loss": val["loss"] if val else None, "val_accuracy": val["accuracy"] if val else None,
               "lr": lr, "time": elapsed}
        for key in HISTORY_KEYS:
            self.history[key].append(row[key])
        self.epoch, self.epoch_step, self._in_progress = epoch, 0, None
        self._loader_state = loader.rng.bit_generator.state
        if self.out_dir is not None:
            self.save_checkpoint()
        if self.log is not None:
            val_text = (f"  val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}" if val else "")
            self.log(f"epoch {epoch}/{epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}{val_text}"
                     f"  lr {lr:.3g}  {elapsed:.1f} s ({seen / elapsed:.0f} img/s)")
        for hook in self.hooks:
            hook.after_epoch(self)

    def _commit(self, loader, progress: EpochProgress) -> None:
        """Write a checkpoint in the middle of the epoch (``checkpoint_every``), when out_dir is set."""
        if self.out_dir is None:
            return
        self._check_weights(self.epoch + 1, progress.step)
        self._in_progress, self._epoch_start = progress, loader.place.start
        self._loader_state = loader.rng.bit_generator.state
        self.save_checkpoint()
        self._in_progress = None

    def _check_weights(self, epoch: int, step: int) -> None:
        # An update can overflow a weight even when this batch's loss was finite; such weights
        # must never reach a checkpoint.
        if not all(bool(get_array_module(p).isfinite(p).all())
                   for p in (owner.params[key] for _, owner, key in self.model.named_parameters())):
            self._diverged(epoch, step, math.nan, "a weight overflowed to inf or nan")

    def _diverged(self, epoch: int, step: int, loss: float, what: str):
        """Raise DivergenceError (with .epoch, .step, .loss, .checkpoint). The weights in memory
        are spoiled by then; the checkpoint on disk, if any, holds the last good epoch."""
        checkpoint = self.out_dir / CHECKPOINT if self.out_dir is not None else None
        if checkpoint is not None and checkpoint.exists():
            where = f"; last good checkpoint kept in {self.out_dir}"
        elif checkpoint is not None:
            where = f"; no checkpoint was written to {self.out_dir} (no epoch completed)"
        else:
            where = ""
        error = DivergenceError(f"training diverged at epoch {epoch}, step {step} ({what}){where}")
        error.epoch, error.step, error.loss = epoch, step, loss
        error.checkpoint = checkpoint if checkpoint is not None and checkpoint.exists() else None
        raise error

    def _progress_bar(self, total: int, description: str, initial: int = 0):
        if not self.progress:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # the bar is a nicety; training works without it
            return None
        return tqdm(total=total, initial=initial, desc=description, unit="batch", file=sys.stderr, leave=True,
                    dynamic_ncols=True)

    # -- inference ------------------------------------------------------------------------------
    def evaluate(self, x, y, batch_size: int = 500) -> dict[str, float]:
        """Mean loss and accuracy of the model over x (N, C, H, W) and y (N,) labels or (N, K)
        targets: {"loss": float, "accuracy": float}; see the module function ``evaluate``."""
        return evaluate(self.model, x, y, self.loss, batch_size)

    def predict(self, x, batch_size: int = 500) -> np.ndarray:
        """Class probabilities (N, K): softmax of the logits, computed in eval mode in batches."""
        return predict_proba(self.model, x, batch_size)

    # -- checkpoints ----------------------------------------------------------------------------
    def _rng_states(self) -> dict:
        states = {"loader": self._loader_state, "model": self.model.rng_states(),
                  "init": init.default_rng().bit_generator.state}
        if self._in_progress is not None:
            states["loader_epoch_start"] = self._epoch_start
        return states

    def _epoch_progress(self) -> dict | None:
        """The record of the epoch in progress a checkpoint stops in (None between epochs)."""
        return asdict(self._in_progress) if self._in_progress is not None else None

    def _resume_epoch(self, meta: dict) -> EpochProgress | None:
        """The progress of the epoch a checkpoint stopped in, for this process to go on from."""
        if not meta.get("step"):
            return None
        return EpochProgress(**{field.name: meta["partial"][field.name] for field in fields(EpochProgress)})

    def save_checkpoint(self) -> Path:
        """Write checkpoint.npz into out_dir (atomically, keeping the one before it); after a
        complete epoch also history.json and model.npz."""
        if self.out_dir is None:
            raise ConfigError("save_checkpoint: the trainer has no out_dir")
        opt_state = self.optimizer.state_dict()
        arrays = {f"model/{k}": v for k, v in state_dict(self.model).items()}
        arrays.update({f"optim/{k}": v for k, v in opt_state["arrays"].items()})
        meta = {
            "epoch": self.epoch, "step": self.epoch_step if self._in_progress is not None else 0,
            "global_step": self.global_step, "seed": self.seed, "history": self.history,
            "architecture": to_config(self.model), "loss": type(self.loss).__name__,
            "optimizer": opt_state["hyper"],
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "schedule_per": self.schedule_per,
            "rng": self._rng_states(), "fit": getattr(self, "_fit_args", {}), "config": self.config,
            "partial": self._epoch_progress(),
        }
        # The checkpoint is the source of truth and goes first; the other two are conveniences
        # that a resumed run rewrites, and stand for complete epochs only.
        path = write_checkpoint(self.out_dir, arrays, meta, last_damaged=self._last_damaged)
        self._last_damaged = False
        if self._in_progress is None:
            write_json_atomic(self.out_dir / HISTORY, self.history)
            save(self.model, self.out_dir / MODEL, {"training": {**self.config, "epochs_done": self.epoch}})
        return path

    def load_checkpoint(self, path, checkpoint: tuple[dict, dict] | None = None) -> dict:
        """Restore weights, optimizer, schedule, generators, epoch (and the place in the epoch a
        checkpoint taken in its middle stopped at) and history; returns the meta.

        The checkpoint must come from the same architecture, optimizer class and schedule class.

        Parameters
        ----------
        path : str or path
            a checkpoint file, or a run folder (its newest good checkpoint)
        checkpoint : tuple of dict, optional
            (arrays, meta) already read from path, or None to read it here
        """
        if checkpoint is None:
            arrays, meta, self._last_damaged = read_newest(path)
        else:
            arrays, meta = checkpoint
        if meta["architecture"] != to_config(self.model):
            raise ModelFileError(f"{path}: the checkpoint's architecture differs from this trainer's model")
        try:
            load_state_dict(self.model, _split(arrays, "model/"))
            self.optimizer.load_state_dict({"hyper": meta["optimizer"], "arrays": _split(arrays, "optim/")})
            if (meta.get("schedule") is None) != (self.schedule is None):
                raise ModelFileError("the checkpoint has a schedule and this trainer none, or the reverse")
            if self.schedule is not None:
                self.schedule.load_state_dict(meta["schedule"])
            history = meta["history"]
            if set(history) != set(HISTORY_KEYS) or any(len(history[k]) != meta["epoch"] for k in HISTORY_KEYS):
                raise ModelFileError("the history does not match the epoch count")
            rng = meta["rng"]
            self.model.set_rng_states(rng.get("model") or {})
            if rng.get("init") is not None:
                init.default_rng().bit_generator.state = rng["init"]
            self._in_progress = self._resume_epoch(meta)
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise ModelFileError(f"{path}: corrupt checkpoint ({type(exc).__name__}: {exc})") from None
        self._loader_state = rng.get("loader")
        self._epoch_start = rng.get("loader_epoch_start")
        self._checkpoint_fit = meta.get("fit") or None
        self.seed = int(meta.get("seed", self.seed))
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        if self.out_dir is not None and folder.resolve() == self.out_dir.resolve():
            self._claimed = self.out_dir  # continuing the run in out_dir, not starting one over it
        self._loader_seed = int(np.random.SeedSequence(self.seed).generate_state(2, np.uint64)[0])
        self.history = {key: list(history[key]) for key in HISTORY_KEYS}
        self.epoch, self.epoch_step = int(meta["epoch"]), int(meta.get("step", 0))
        self.config = dict(meta["config"])
        self.schedule_per = meta.get("schedule_per", self.schedule_per)
        return meta

    @classmethod
    def resume(cls, out_dir, progress: bool = True, log: Callable[[str], Any] | None = None,
               hooks: Iterable[Hook] = (), checkpoint_every: int | None = None) -> "Trainer":
        """A trainer rebuilt from the checkpoint in out_dir (see ``read_checkpoint``): model,
        loss, optimizer and schedule come from it, in the state they had when it was written.

        Call ``fit`` with the same data, batch size and augmentation as the original run, and
        ``epochs`` = the run's total, to finish it exactly as it would have finished.
        """
        out_dir = Path(out_dir)
        arrays, meta, damaged = read_newest(out_dir)
        model, loss, optimizer, schedule = rebuild(meta, out_dir / CHECKPOINT)
        trainer = cls(model, loss, optimizer, schedule, seed=int(meta.get("seed", 0)), out_dir=out_dir,
                      progress=progress, log=log, config=meta["config"],
                      schedule_per=meta.get("schedule_per", "epoch"), hooks=hooks, checkpoint_every=checkpoint_every)
        trainer.load_checkpoint(out_dir, (arrays, meta))
        trainer._last_damaged = damaged
        return trainer
