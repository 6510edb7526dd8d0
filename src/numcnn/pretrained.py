"""Pretrained models shipped inside the package: ready to explain, evaluate or fine-tune, offline.

    model = nc.zoo.pretrained("fashion-net")        # checksums verified, in eval mode
    nc.pretrained.available()                       # {name: Entry with accuracy and provenance}
    numcnn pretrained                               # the same list on the command line
    numcnn serve --pretrained fashion-net           # and --pretrained NAME wherever a model file goes

Each model is a ``model.npz`` of numcnn's own format (with its training record: dataset, class
names) and a file of example images, one test image per class, which ``numcnn serve`` opens
on. ``MANIFEST.json`` beside them gives each file's SHA-256, checked before a file is read, and
the provenance: the data, the command, the seed, the time and machine, and the accuracy on the
test set, measured once after the training.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, ModelFileError
from .io import read_npz
from .layers import Layer
from .model import read_model

__all__ = ["WEIGHTS", "Entry", "available", "entry", "model_path", "load", "examples"]

WEIGHTS = Path(__file__).resolve().parent / "weights"  # the files and MANIFEST.json
MANIFEST = "MANIFEST.json"


@dataclass(frozen=True)
class Entry:
    """One pretrained model: its files with their SHA-256, and where it came from.

    Attributes
    ----------
    name : str
        The name to ask for, e.g. "fashion-net".
    model : str
        The zoo model it is an instance of.
    dataset : str
        What it was trained on.
    file, sha256 : str
        The model file in ``WEIGHTS``, and its checksum.
    examples, examples_sha256 : str
        The example images (uint8 (K, C, H, W), labels (K,)), and theirs.
    parameters : int
        The number of trainable parameters.
    test_accuracy : float
        On the dataset's test set, evaluated once after the training.
    provenance : dict
        The command, seed, time, machine and data licence, one line each.
    """

    name: str
    model: str
    dataset: str
    file: str
    sha256: str
    examples: str
    examples_sha256: str
    parameters: int
    test_accuracy: float
    provenance: dict


def available(folder: Path | None = None) -> dict[str, Entry]:
    """Every pretrained model the package ships, by name, as its manifest describes it."""
    folder = WEIGHTS if folder is None else Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{folder / MANIFEST}: cannot be read ({exc}); reinstall numcnn") from None
    return {name: Entry(name=name, **fields) for name, fields in manifest.items()}


def entry(name: str, folder: Path | None = None) -> Entry:
    """The manifest entry of name; a ConfigError listing the known names if there is none."""
    known = available(folder)
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
    if key not in known:
        listed = ", ".join(known) or "none in this installation"
        raise ConfigError(f"no pretrained model named {name!r}; known: {listed}")
    return known[key]


def _verified(path: Path, sha256: str) -> Path:
    """path, once its SHA-256 is the manifest's; a ModelFileError naming the file if not."""
    if not path.is_file():
        raise ModelFileError(f"{path}: the pretrained file is missing; reinstall numcnn")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ModelFileError(f"{path}: checksum mismatch (SHA-256 {digest}, expected {sha256}): the file is "
                             f"corrupted or was changed; reinstall numcnn")
    return path


def model_path(name: str, folder: Path | None = None) -> Path:
    """The verified model file of pretrained model name (what ``--pretrained NAME`` reads)."""
    found = entry(name, folder)
    return _verified((WEIGHTS if folder is None else Path(folder)) / found.file, found.sha256)


def load(name: str, folder: Path | None = None) -> Layer:
    """Pretrained model name, its checksum verified, in eval mode.

    Returns
    -------
    Sequential
        The model; its input is (N, C, H, W) floats in [0, 1], its output (N, K) logits over
        the classes of ``entry(name).dataset``.
    """
    model, _ = read_model(model_path(name, folder))
    return model.eval()


def examples(name: str, folder: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The example images shipped with pretrained model name: x (K, C, H, W) uint8, y (K,)
    int64, one test image per class, verified against the manifest."""
    found = entry(name, folder)
    path = _verified((WEIGHTS if folder is None else Path(folder)) / found.examples, found.examples_sha256)
    arrays, _ = read_npz(path)
    return arrays["x"], arrays["y"].astype(np.int64)
