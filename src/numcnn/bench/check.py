"""The correctness check: every implementation's outputs, saved by its worker, against numcnn's.

A wrong kernel is never timed silently: a mismatch is flagged in the table and makes the exit
status 1.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy

TOL = {"float32": 1e-4, "float64": 1e-10}       # max |a - b| / max(|a|, |b|), per array
# Logits and gradients of a whole network. In float32 a pre-activation within rounding of a ReLU
# kink (or a max-pool near-tie) can fall either way, moving a few gradient entries by up to
# ~3e-3 of the largest; a wrong kernel is off by far more.
TOL_NET = {"float32": 1e-2, "float64": 1e-9}


def save(path, arrays) -> None:
    """Write a tuple of arrays (CuPy arrays and torch tensors, on any device, too) in order, to
    be compared by ``compare``."""
    np.savez(path, *(a.detach().cpu().numpy() if hasattr(a, "detach") else to_numpy(a) for a in arrays))


def load(path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def rel_err(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs| / max(|ours|, |theirs|), symmetric; inf when the shapes differ."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        return math.inf
    if ours.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(ours))), float(np.max(np.abs(theirs))), 1e-30)
    return float(np.max(np.abs(ours - theirs))) / scale


def compare(outputs: dict[str, list], tol: float) -> dict[str, float]:
    """{impl: worst relative error} for each implementation whose outputs differ from numcnn's
    by more than tol (inf where the number of outputs differs)."""
    reference = outputs["numcnn"]
    bad = {}
    for impl, arrays in outputs.items():
        if impl == "numcnn":
            continue
        worst = (max((rel_err(a, b) for a, b in zip(reference, arrays)), default=0.0)
                 if len(arrays) == len(reference) else math.inf)
        if worst > tol:
            bad[impl] = worst
    return bad
