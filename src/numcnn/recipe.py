"""One training recipe, shared by ``numcnn train`` and Python users: settings in, a run out.

::

    run = recipe.build({"model": "lenet5", "dataset": "sample", "epochs": 2})
    trainer = run.trainer(out_dir="runs/lenet")
    run.fit(trainer)                                  # the same run `numcnn train` would make

``build`` reads the dataset (a registered name or a folder of images), builds the zoo model
for its image shape and class count, puts a ``Normalize`` layer with the training set's
per-channel statistics in front where the dataset asks for it, and makes the optimizer, the
learning-rate schedule and the augmentation, all from one dict of settings (``DEFAULTS`` says
which). The settings are recorded in every checkpoint, and ``resume`` rebuilds the same run
from a run folder. A new dataset or model is one registry entry (``numcnn.data``,
``numcnn.zoo``); nothing here names one.

Images stay uint8 in memory (CIFAR-10: 150 MB) and are scaled a batch at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np

from . import data, init, optim, zoo
from .errors import ConfigError, DataError, ModelFileError
from .layers import Layer, Normalize
from .model import Sequential
from .checkpoint import check_resume_settings, read_checkpoint
from .train import Hook, Trainer

DEFAULTS: dict[str, Any] = {
    "model": "simple-convnet", "dataset": "fashion-mnist", "epochs": 3, "batch_size": 100,
    "optimizer": "adam", "lr": 1e-3, "weight_decay": None, "schedule": "none", "augment": False, "seed": 0,
    "data_dir": None, "limit": None, "test_limit": None,
    # The data: CIFAR-100's labels ("fine" or "coarse"); an image folder's picture size, channel
    # count, held-out fraction and whether an unreadable file is an error.
    "labels": None, "image_size": None, "channels": None, "val_fraction": None, "strict": False,
    # Per-channel standardisation in the model (None: as the dataset says), colour jitter
    # strength for augment, and the zoo model's width (None: the model's default).
    "normalize": None, "jitter": 0.0, "width": None,
    # The floating-point type of the weights, the images and every computation.
    "dtype": "float32",
    # A checkpoint every this many steps within the epochs too (None: after each epoch only).
    "checkpoint_every": None,
}
DTYPES = ("float32", "float64")
SCHEDULES = ("none", "step", "cosine", "warmup-cosine")
# What a resumed run takes from its checkpoint and may not change; epochs may grow, the data
# may have moved (data_dir), and checkpoints may come more or less often.
FIXED_ON_RESUME = tuple(key for key in DEFAULTS if key not in ("epochs", "data_dir", "checkpoint_every"))


def _check_number(settings: dict, key: str, kind: type, minimum: float, inclusive: bool = True,
                  optional: bool = False) -> None:
    value = settings[key]
    if value is None and optional:
        return
    is_kind = isinstance(value, numbers.Integral if kind is int else numbers.Real) and not isinstance(value, bool)
    if not (is_kind and math.isfinite(value) and (value >= minimum if inclusive else value > minimum)):
        what = "an int" if kind is int else "a number"
        raise ConfigError(f"{key} must be {what} {'>=' if inclusive else '>'} {minimum:g}"
                          f"{' or None' if optional else ''}, got {value!r}")


def settings(given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The complete settings of a run: DEFAULTS, overridden by the non-None entries of given.

    Everything is checked here, before any data is read: unknown keys, model, dataset,
    optimizer or schedule names, and numbers out of range all raise ConfigError (DataError
    for the dataset). Names come back canonical ("Fashion_MNIST" -> "fashion-mnist").
    """
    given = {key: value for key, value in (given or {}).items() if value is not None}
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown settings {unknown}: expected some of {', '.join(DEFAULTS)}")
    out = {**DEFAULTS, **given}
    out["model"] = zoo.canonical_name(out["model"])
    out["dataset"] = data.canonical_dataset(out["dataset"])
    optimizer = str(out["optimizer"]).lower()
    if optimizer not in optim.OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {out['optimizer']!r}: expected one of {', '.join(optim.OPTIMIZERS)}")
    out["optimizer"] = optimizer
    if out["schedule"] not in SCHEDULES:
        raise ConfigError(f"unknown schedule {out['schedule']!r}: expected one of {', '.join(SCHEDULES)}")
    for key in ("epochs", "batch_size"):
        _check_number(out, key, int, 1)
    _check_number(out, "seed", int, 0)
    _check_number(out, "lr", float, 0, inclusive=False)
    _check_number(out, "weight_decay", float, 0, optional=True)
    for key in ("limit", "test_limit", "checkpoint_every"):
        _check_number(out, key, int, 1, optional=True)
    for key in ("augment", "strict"):
        if not isinstance(out[key], bool):
            raise ConfigError(f"{key} must be True or False, got {out[key]!r}")
    if out["normalize"] not in (None, True, False):
        raise ConfigError(f"normalize must be True, False or None, got {out['normalize']!r}")
    _check_number(out, "jitter", float, 0)
    if out["jitter"] > 1:
        raise ConfigError(f"jitter must be a number in [0, 1], got {out['jitter']!r}")
    _check_number(out, "width", int, 1, optional=True)
    if out["dtype"] not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {out['dtype']!r}")
    if out["width"] is not None and "width" not in zoo.options(out["model"]):
        raise ConfigError(f"width: {out['model']} has no width to set (models with one: "
                          f"{', '.join(name for name in zoo.MODELS if 'width' in zoo.options(name))})")
    _check_data_options(out)
    if out["data_dir"] is not None:
        out["data_dir"] = str(out["data_dir"])
    return out


def _check_data_options(out: dict[str, Any]) -> None:
    """The data settings must fit the dataset: labels for CIFAR-100, the rest for image folders."""
    folder = data.is_folder_dataset(out["dataset"])
    if folder:
        data.images.require_pillow()  # before any work: an image folder cannot be read without it
    if out["labels"] is not None:
        choices = data.datasets.LABELS.get(out["dataset"])
        if choices is None:
            raise ConfigError(f"labels: only {', '.join(data.datasets.LABELS)} has a choice of labels, "
                              f"not {out['dataset']}")
        if out["labels"] not in choices:
            raise ConfigError(f"labels must be one of {', '.join(choices)}, got {out['labels']!r}")
    # val_fraction carves a validation split out of any training set; the rest are folder-only.
    given = [key for key in data.datasets.FOLDER_OPTIONS if out[key] not in (None, False) and key != "val_fraction"]
    if given and not folder:
        raise ConfigError(f"{', '.join(given)}: for image folders only, not for {out['dataset']}")
    if folder and out["data_dir"] is not None:
        raise ConfigError("data_dir applies to named datasets; give the image folder as the dataset")
    _check_number(out, "image_size", int, 1, optional=True)
    if out["channels"] not in (None, 1, 3):
        raise ConfigError(f"channels must be 1, 3 or None, got {out['channels']!r}")
    _check_number(out, "val_fraction", float, 0, inclusive=False, optional=True)
    if out["val_fraction"] is not None and out["val_fraction"] >= 1:
        raise ConfigError(f"val_fraction must be a number in (0, 1), got {out['val_fraction']!r}")


def data_of(record: dict[str, Any], dataset: str | None = None, data_dir=None,
            input_shape=None) -> tuple[str, Any, dict[str, Any]]:
    """(dataset, data_dir, options) that read a run's data as it read them, or another dataset.

    The options are its labels, image size, split, ... Pass the three to ``data.prepare``. ConfigError if neither names a dataset.

    Parameters
    ----------
    record : dict
        The run's settings, as a checkpoint or model.npz records them.
    dataset : str, optional
        Another dataset to read; default the run's own.
    data_dir : path, optional
        Where the data is now: a named dataset's folder, or the run's image folder that has
        moved; default the run's data_dir (for its own dataset).
    input_shape : tuple of int, optional
        The model's (C, H, W); another image folder is then read at H x H when H == W.
    """
    own = record.get("dataset")
    if dataset is None and own is None:
        raise ConfigError("the model does not record its dataset; name one (--dataset)")
    if dataset is None and data_dir is not None and data.is_folder_dataset(own):
        dataset, data_dir, own = data_dir, None, data.canonical_dataset(data_dir)  # the folder moved
    elif dataset is None and data_dir is None and not data.is_folder_dataset(own):
        data_dir = record.get("data_dir")
    dataset = data.canonical_dataset(dataset or own)
    options = dataset_options({**record, "dataset": dataset}) if dataset == own else {}
    if dataset != own and data.is_folder_dataset(dataset) and input_shape and input_shape[1] == input_shape[2]:
        options = {"image_size": int(input_shape[1])}  # photos of any size, at the model's input
    return dataset, data_dir, options


def dataset_options(config: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``data.prepare``/``data.load`` that a run's settings give."""
    if not data.is_folder_dataset(config["dataset"]):
        return {"labels": config.get("labels")}
    options = {key: config.get(key) for key in data.datasets.FOLDER_OPTIONS}
    return {**options, "strict": bool(options["strict"]), "seed": config.get("seed", 0)}


def build_schedule(name: str, optimizer, epochs: int, batches_per_epoch: int):
    """The schedule ``name`` and when the trainer steps it.

    Parameters
    ----------
    name : {"none", "step", "cosine", "warmup-cosine"}
        step: x0.1 every third of the run; cosine: down to 0 over the epochs; warmup-cosine:
        one epoch of linear warm-up, then a cosine over the remaining batches.
    optimizer : Optimizer
        The optimizer whose ``lr`` the schedule sets.
    epochs, batches_per_epoch : int
        The run's length.

    Returns
    -------
    tuple
        (schedule or None, "epoch" or "batch").
    """
    if name == "none":
        return None, "epoch"
    if name == "step":
        return optim.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), "epoch"
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=epochs), "epoch"
    total = epochs * batches_per_epoch
    warmup = min(batches_per_epoch, total - 1)
    return optim.WarmupCosine(optimizer, warmup_steps=warmup, total_steps=total), "batch"


Split = tuple[Any, Any]


class Loaded(NamedTuple):
    """A run's data: train and test (x, y), x (N, C, H, W) as stored (uint8 for every built-in
    format), the source line, and the dataset's description."""

    train: Split
    test: Split
    source: str
    info: data.DatasetInfo


def load_data(config: dict[str, Any], progress: bool | None = None) -> Loaded:
    """The data of a run's settings, cut to its limit and test_limit.

    Parameters
    ----------
    progress
        a bar while an image folder decodes (None: on a terminal, for large folders).
    """
    described, folder, source = data.prepare(config["dataset"], config["data_dir"], progress=progress,
                                             **dataset_options(config))
    (x, y), (x_test, y_test) = described.reader(folder, described)
    if config.get("val_fraction") is not None and not data.is_folder_dataset(config["dataset"]):
        # A named dataset keeps its test set for the end: the run validates on a held-out part
        # of its training set instead, the same part for the same seed.
        held_out = data.folder.split_by_fraction(y, config["val_fraction"], config.get("seed", 0)) == 1
        (x, y), (x_test, y_test) = (x[~held_out], y[~held_out]), (x[held_out], y[held_out])
    if config["limit"] is not None:
        x, y = x[:config["limit"]], y[:config["limit"]]
    if config["test_limit"] is not None:
        x_test, y_test = x_test[:config["test_limit"]], y_test[:config["test_limit"]]
    if config.get("dtype", "float32") != "float32":
        # Kernels compute in their input's dtype, so float64 training needs float64 images:
        # 8 bytes a pixel in memory instead of uint8's 1.
        dtype = np.dtype(config["dtype"])
        x, x_test = (data.as_float_images(part, dtype) if part.dtype == np.uint8 else part.astype(dtype)
                     for part in (np.asarray(x), np.asarray(x_test)))
    return Loaded((x, y), (x_test, y_test), source, described)


@dataclass
class Run:
    """Everything one training run is made of.

    Parameters
    ----------
    config : dict
        The complete settings (JSON-friendly), recorded in checkpoints and model.npz.
    dataset : DatasetInfo
        The dataset's description (shape, classes, ...).
    train, test : tuple of ndarray
        (x, y): x of shape (N, C, H, W), uint8 pixels (or float32 in [0, 1]), y of shape (N,),
        int64; the test set serves as the validation set.
    source : str
        Where the data was read from, one line.
    model, optimizer, schedule, schedule_per
        As the Trainer takes them.
    augment : callable or None
        The batch augmentation, or None.
    """

    config: dict[str, Any]
    dataset: data.DatasetInfo
    train: Split
    test: Split
    source: str
    model: Layer
    optimizer: optim.Optimizer
    schedule: Any
    schedule_per: str
    augment: Callable | None

    def trainer(self, out_dir=None, progress: bool = False, log: Callable[[str], Any] | None = None,
                hooks: Iterable[Hook] = (), trainer_class: Callable[..., Trainer] = Trainer,
                overwrite: bool = False) -> Trainer:
        """A Trainer for this run, writing checkpoints into out_dir (None: no files).

        Its record (in the checkpoint and model.npz) is the settings plus what predicting needs
        without the data: the class names and whether the pictures are light on dark.

        Parameters
        ----------
        trainer_class : callable, default Trainer
            Trainer, or a subclass such as ``numcnn.distributed.DistributedTrainer``.
        overwrite : bool, default False
            let the run replace one already in out_dir (without it, that is a ConfigError).
        """
        record = {**self.config, "classes": list(self.dataset.classes),
                  "dark_background": self.dataset.dark_background,
                  "data_fingerprint": data_fingerprint(self.dataset, self.train, self.test)}
        return trainer_class(self.model, None, self.optimizer, self.schedule, seed=self.config["seed"], out_dir=out_dir,
                       progress=progress, log=log, config=record, schedule_per=self.schedule_per,
                       hooks=hooks, checkpoint_every=self.config["checkpoint_every"], overwrite=overwrite)

    def fit(self, trainer: Trainer) -> dict[str, list]:
        """Train until the run's epochs are done (the rest of them, for a resumed trainer)."""
        return trainer.fit(*self.train, self.config["epochs"], batch_size=self.config["batch_size"],
                           validation=self.test, augment=self.augment)


def data_fingerprint(dataset: data.DatasetInfo, train: Split, test: Split) -> str:
    """A digest of what a run trains on: the class names, the images' shape and every label of
    both splits in order. A class renamed, a picture added or removed, or another split changes
    it; a resumed run checks it, so that it never goes on training with other labels."""
    digest = hashlib.sha256(json.dumps([list(map(str, dataset.classes)), list(train[0].shape),
                                        list(test[0].shape)]).encode())
    for labels in (train[1], test[1]):
        digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:24]


def _augmentation(config: dict[str, Any], dataset: data.DatasetInfo):
    return data.default_augmentation(dataset, config["jitter"]) if config["augment"] else None


def build(config: dict[str, Any], loaded: Loaded | None = None, progress: bool | None = None) -> Run:
    """A new run from settings (see ``settings``): data, model, optimizer, schedule, augmentation.

    The model's weights are drawn after ``numcnn.manual_seed(seed)``, so equal settings give
    equal runs. With normalize (by default for colour datasets), the model's first layer is a
    ``Normalize`` holding the training images' per-channel mean and std.

    Parameters
    ----------
    config : dict
        The settings.
    loaded : Loaded, optional
        The run's data as ``load_data`` returns it, if already read; else it is read here.
    progress : bool, optional
        A bar while an image folder decodes (see ``load_data``).
    """
    config = settings(config)
    train, test, source, dataset = loaded if loaded is not None else load_data(config, progress)
    height, width = dataset.shape[1:]
    if (data.is_folder_dataset(config["dataset"]) and config["image_size"] is None and height != width
            and config["model"] != "mlp"):  # photos of one oblong size, for a model of square images
        config["image_size"] = min(height, width)  # recorded: a resumed run reads them alike
        train, test, source, dataset = load_data(config, progress)
    if config["normalize"] is None:
        config["normalize"] = dataset.normalize
    init.manual_seed(config["seed"])
    width = {"width": config["width"]} if config["width"] is not None else {}
    model = zoo.model_for(config["model"], dataset.shape, dataset.num_classes, **width)
    if config["normalize"]:
        mean, std = data.channel_stats(train[0])
        model = Sequential(Normalize(mean, std), *model.layers, input_shape=model.input_shape)
    cast_model(model, config["dtype"])
    # Without weight_decay each optimizer keeps its own default (0, or 1e-2 for AdamW).
    extra = {"weight_decay": config["weight_decay"]} if config["weight_decay"] is not None else {}
    optimizer = optim.get_optimizer(config["optimizer"], model, lr=config["lr"], **extra)
    config["weight_decay"] = optimizer.weight_decay
    batches = math.ceil(len(train[0]) / config["batch_size"])
    schedule, per = build_schedule(config["schedule"], optimizer, config["epochs"], batches)
    augment = _augmentation(config, dataset)
    return Run(config, dataset, train, test, source, model, optimizer, schedule, per, augment)


def cast_model(model: Layer, dtype) -> Layer:
    """Convert every floating-point weight and buffer of model to dtype, in place; returns model."""
    dtype = np.dtype(dtype)
    for _, layer in model.named_layers():
        for store in (layer.params, layer.buffers):
            for key, value in store.items():
                if value.dtype.kind == "f":
                    store[key] = value.astype(dtype)
        if isinstance(getattr(layer, "dtype", None), np.dtype):
            layer.dtype = dtype  # recorded in the architecture, so a resumed run rebuilds it alike
    return model


def resume(run_dir, given: dict[str, Any] | None = None, epochs: int | None = None, data_dir=None,
           progress: bool = False, log: Callable[[str], Any] | None = None,
           hooks: Iterable[Hook] = (), trainer_class: type[Trainer] = Trainer) -> tuple[Run, Trainer]:
    """The run in run_dir, rebuilt from its checkpoint, and a Trainer in its saved state.

    Parameters
    ----------
    given
        settings the caller states (e.g. from the command line); each must equal the
        run's, else ResumeMismatchError names both values
    epochs
        the run's new total (default: as planned); never fewer than it completed, and
        never more than planned with a cosine schedule, which ends at a learning rate of 0
        (a ConfigError: start a new run instead)
    data_dir : path, optional
        Where the data is now, if it moved.
    trainer_class
        Trainer, or a subclass such as ``numcnn.distributed.DistributedTrainer``
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelFileError(f"{run_dir}: no such run folder")
    _, meta = read_checkpoint(run_dir, warn=False)  # a checkpoint that fails its check: the trainer's reading says so
    saved = dict(meta["config"])
    if not saved.get("dataset") or not saved.get("batch_size"):
        raise ModelFileError(f"{run_dir}: the checkpoint was not written by a recipe run (no dataset recorded)")
    if data.is_folder_dataset(saved["dataset"]):
        if data_dir is not None:  # an image folder that moved: data_dir is its new place
            saved["dataset"], data_dir = str(data_dir), None
        elif not Path(saved["dataset"]).is_dir():
            raise DataError(f"{run_dir}: the run's image folder {saved['dataset']} is gone; "
                            f"give its new place with data_dir (--data-dir)")
    try:
        config = settings({key: saved.get(key) for key in DEFAULTS})
    except ConfigError as exc:
        raise ModelFileError(f"{run_dir}: the checkpoint's settings are not valid ({exc})") from None
    given = {key: value for key, value in (given or {}).items() if value is not None}
    stated = settings({**config, **given})  # checked and canonical, like the run's own
    check_resume_settings({key: config[key] for key in FIXED_ON_RESUME},
                          {key: stated[key] for key in given if key in FIXED_ON_RESUME}, run_dir)
    planned = config["epochs"]
    config["epochs"] = epochs or planned
    if config["epochs"] < meta["epoch"]:
        raise ConfigError(f"epochs {config['epochs']}: the run in {run_dir} already completed {meta['epoch']} epochs")
    if config["epochs"] == meta["epoch"] and meta.get("step"):
        raise ConfigError(f"epochs {config['epochs']}: the run in {run_dir} stopped in the middle of epoch "
                          f"{meta['epoch'] + 1}; resume it with --epochs {meta['epoch'] + 1} or more")
    if config["epochs"] > planned and config["schedule"] in ("cosine", "warmup-cosine"):
        # A cosine is planned over the run's epochs and ends at a learning rate of 0: epochs past
        # its end would not train (warmup-cosine stays at 0; cosine starts there and climbs back).
        # Stretching it would rewrite the rates the finished epochs were trained with, so refuse.
        raise ConfigError(
            f"the {config['schedule']} schedule of the run in {run_dir} ended at epoch {planned} (learning rate 0), "
            f"so epochs {planned + 1}-{config['epochs']} would not train; to train for {config['epochs']} epochs, "
            f"start a new run with --epochs {config['epochs']} --schedule {config['schedule']}")
    if data_dir is not None:
        config["data_dir"] = str(data_dir)

    if given.get("checkpoint_every") is not None:
        config["checkpoint_every"] = stated["checkpoint_every"]
    trainer = trainer_class.resume(run_dir, progress=progress, log=log, hooks=hooks,
                                   checkpoint_every=config["checkpoint_every"])
    if config["epochs"] > planned and trainer.schedule is not None and log is not None:
        # Re-planning the schedule would change the run; keeping it is the honest default.
        log(f"note: the {config['schedule']} schedule was planned for {planned} epochs and is kept as it "
            f"was; epochs {planned + 1}-{config['epochs']} run past its end")
    trainer.config.update(epochs=config["epochs"], data_dir=config["data_dir"], dataset=config["dataset"],
                          checkpoint_every=config["checkpoint_every"])
    train, test, source, dataset = load_data(config)
    recorded = meta["config"].get("data_fingerprint")
    if recorded is not None and recorded != data_fingerprint(dataset, train, test):
        before = meta["config"].get("classes") or []
        changed = (f"its classes were {', '.join(map(str, before))}, are now {', '.join(map(str, dataset.classes))}"
                   if list(before) != list(dataset.classes) else "images were added, removed or moved between classes")
        raise DataError(f"{run_dir}: the data is not what the run trained on ({changed}); resuming would train on "
                        f"other labels: restore the data, or start a new run")
    augment = _augmentation(config, dataset)
    run = Run(config, dataset, train, test, source, trainer.model, trainer.optimizer, trainer.schedule,
              trainer.schedule_per, augment)
    return run, trainer


__all__ = ["DEFAULTS", "DTYPES", "SCHEDULES", "cast_model", "Loaded", "Run", "build", "build_schedule", "data_of", "dataset_options", "load_data",
           "resume", "settings", "data_fingerprint"]
