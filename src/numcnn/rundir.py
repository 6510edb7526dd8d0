"""A run folder: what a training run writes there, under which names, and how a run claims one.

::

    runs/simple-convnet-fashion-mnist/      (``default(model, dataset)``)
        model.npz           the model after the last finished epoch (``numcnn.load`` reads it)
        checkpoint.npz      everything ``--resume`` needs, written atomically (every epoch, and
                            every --checkpoint-every steps), with a SHA-256 of its contents
        checkpoint.previous.npz   the checkpoint before it, read when the last one fails its check
        checkpoint.damaged.npz    a last checkpoint that failed its check, set aside by the run
                            that resumed from the previous one (so it never becomes "previous")
        history.json        the losses and accuracies of every epoch
        .ranks/             an MPI job's rank reports, while it runs (``distributed.abort``)
        learning_curves.png, filters.png, ...   the plots (``numcnn.viz``)

This module is the one owner of these names and of the rules for ``--out`` and ``--resume``;
the trainer, the command line, the MPI launcher and the plots all ask it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

__all__ = ["MODEL", "CHECKPOINT", "PREVIOUS_CHECKPOINT", "DAMAGED_CHECKPOINT", "HISTORY", "RANKS", "PLOTS", "ROOT",
           "default", "model_path", "check_flags", "check_outside", "claimable", "start"]

MODEL = "model.npz"
CHECKPOINT = "checkpoint.npz"
PREVIOUS_CHECKPOINT = "checkpoint.previous.npz"
DAMAGED_CHECKPOINT = "checkpoint.damaged.npz"
HISTORY = "history.json"
# The launcher's folder for its ranks' reports: in the run folder, because that is on a
# filesystem every host of the job sees, as the checkpoints need.
RANKS = ".ranks"
PLOTS = {"history": "learning_curves.png", "filters": "filters.png", "feature_maps": "feature_maps.png",
         "confusion": "confusion.png", "misclassified": "misclassified.png"}
ROOT = Path("runs")  # where a run goes when no folder is named


def default(model: str, dataset: str) -> Path:
    """runs/MODEL-DATASET: an image folder's own name stands for its dataset."""
    return ROOT / f"{model}-{Path(dataset).name}"


def model_path(path) -> Path:
    """The model file of a run folder, or path itself when it is a file."""
    path = Path(path)
    return path / MODEL if path.is_dir() else path


def check_flags(resume, out, overwrite) -> None:
    """--resume continues a run in its own folder: --out and --overwrite cannot go with it."""
    if resume and (out is not None or overwrite):
        raise ConfigError("--resume RUN_DIR continues the run in RUN_DIR; drop --out and --overwrite")


def check_outside(out, folder) -> None:
    """A run folder inside the image folder it trains on would become one of its classes."""
    out, folder = Path(out).resolve(), Path(folder).resolve()
    if out == folder or folder in out.parents:
        raise ConfigError(f"the run folder {out} lies inside the image folder {folder}, where its files "
                          f"would be read as pictures; choose a folder outside it with --out")


def claimable(out, overwrite: bool = False, api: bool = False) -> Path:
    """out, if a new run may start there; nothing is changed. A ConfigError if out or a folder
    above it is a file, or if out holds a run (a checkpoint, the previous one, a model or a
    history) or plots of the names a run draws, unless overwrite. The error names the command
    line's flags, or with api the Trainer's arguments."""
    out = Path(out)
    for place in (out, *out.parents):
        if place.exists() and not place.is_dir():
            raise ConfigError(f"{out}: expected a folder for the run, but {place} is a file")
    held = [name for name in (CHECKPOINT, PREVIOUS_CHECKPOINT, MODEL, HISTORY, *PLOTS.values())
            if (out / name).exists()]
    if held and not overwrite:
        resume = f"Trainer.resume({str(out)!r}) or fit(..., resume=True)" if api else f"--resume {out}"
        replace, other = ("overwrite=True", "out_dir") if api else ("--overwrite", "--out")
        if CHECKPOINT in held or PREVIOUS_CHECKPOINT in held:  # either one resumes
            raise ConfigError(f"{out} already holds a run; continue it with {resume}, or pass {replace} "
                              f"to start over")
        raise ConfigError(f"{out} already holds a run ({', '.join(held)}; no checkpoint to resume from); "
                          f"pass {replace} to replace it, or choose another {other}")
    return out


def start(out, overwrite: bool = False, api: bool = False) -> Path:
    """Make out ready for a new run (``claimable``): with overwrite, remove the old checkpoints
    (a stale checkpoint must never be resumed into a new run) and the plots numcnn drew there (a
    run without plots must not show the old run's). Files numcnn does not name are never touched.
    A command calls ``claimable`` before any work and the trainer calls this once the run is
    built, so a run that fails to start destroys nothing."""
    out = claimable(out, overwrite, api)
    if overwrite:
        for name in (CHECKPOINT, PREVIOUS_CHECKPOINT, DAMAGED_CHECKPOINT, *PLOTS.values()):
            (out / name).unlink(missing_ok=True)  # several ranks may start at once
    return out
