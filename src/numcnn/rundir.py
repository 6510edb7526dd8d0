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

__all__ = ["MODEL", "CHECKPOINT", "PREVIOUS_CHECKPOINT", "DAMAGED_CHECKPOINT", "HISTORY", "RANKS", "PLOTS", "ROOT", "default", "model_path", "check_flags", "start"]

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


def start(out, overwrite: bool = False) -> Path:
    """Make out ready for a new run: a ConfigError if it holds one (a checkpoint, the previous
    one, a model or a history), unless overwrite, which removes the old checkpoints (a stale
    checkpoint must never be resumed into a new run) and the plots numcnn drew there (a run
    without plots must not show the old run's). Files numcnn does not name are never touched."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    held = [name for name in (CHECKPOINT, PREVIOUS_CHECKPOINT, MODEL, HISTORY) if (out / name).exists()]
    if held and not overwrite:
        if CHECKPOINT in held or PREVIOUS_CHECKPOINT in held:  # either one resumes
            raise ConfigError(f"{out} already holds a run; continue it with --resume {out}, "
                              f"or pass --overwrite to start over")
        raise ConfigError(f"{out} already holds a run ({', '.join(held)}; no checkpoint to resume from); "
                          f"pass --overwrite to replace it, or choose another --out")
    if overwrite:
        for name in (CHECKPOINT, PREVIOUS_CHECKPOINT, DAMAGED_CHECKPOINT, *PLOTS.values()):
            if (out / name).is_file():
                (out / name).unlink()
    return out
