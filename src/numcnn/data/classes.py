"""A model's classes and its augmentation, as the datasets describe them: the names a saved
model predicts, its labels matched by name, and the default augmentation of ``--augment``."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .datasets import class_names, info, is_folder_dataset
from .info import DatasetInfo
from .loader import ColorJitter, Compose, RandomHorizontalFlip, RandomShift

__all__ = ["model_labels", "to_model_labels", "default_augmentation"]


def model_labels(training: dict, dataset: str | None = None) -> tuple[list[str] | None, bool]:
    """(class names or None, dark_background) of a saved model, for showing its predictions.

    Names come from the record itself, else from its dataset; the background rule likewise.

    Parameters
    ----------
    training : dict
        The model's training record (``read_model``'s second value; {} if none).
    dataset : str, optional
        A dataset to take the class names from instead of the record's own.

    Returns
    -------
    names : list of str or None
        The class names, indexed by label.
    dark_background : bool
        Whether the model takes light things on a dark ground.
    """
    names = training.get("classes") if not dataset else None
    dataset = dataset or training.get("dataset")
    if names is None and dataset:
        names = class_names(dataset, labels=training.get("labels") if dataset == training.get("dataset") else None)
    dark = training.get("dark_background")
    if dark is None and dataset and not is_folder_dataset(dataset):
        dark = info(dataset).dark_background
    return names, bool(dark)


def to_model_labels(y, classes, model_classes):
    """Labels of a dataset read as a model's: y (N,) indexes classes -> (N,) indexes
    model_classes, matched by name. DataError naming the classes the model does not know."""
    index = {name: i for i, name in enumerate(model_classes)}
    unknown = [name for name in classes if name not in index]
    if unknown:
        shown = ", ".join(map(str, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        raise DataError(f"{len(unknown)} of the data's {len(classes)} classes ({shown}) are not among the "
                        f"model's {len(model_classes)} ({', '.join(map(str, list(model_classes)[:5]))}, ...)")
    return np.array([index[name] for name in classes], dtype=np.int64)[np.asarray(y, dtype=np.int64)]


def default_augmentation(dataset: str | DatasetInfo, jitter: float = 0.0):
    """The augmentation ``numcnn train --augment`` uses: random shifts (a random crop of the
    zero-padded image) of up to the dataset's ``shift_fraction`` of the image side (2 pixels at
    28x28 for MNIST, 4 at 32x32 for CIFAR and image folders), left-right flips where a mirror
    image keeps its class, and with jitter > 0 brightness and contrast jitter of that strength.

    Returns a callable (xb, rng) -> xb on (N, C, H, W) float batches.
    """
    described = dataset if isinstance(dataset, DatasetInfo) else info(dataset)
    steps = [RandomShift(max(1, round(min(described.shape[1:]) * described.shift_fraction)))]
    if described.mirror_invariant:
        steps.append(RandomHorizontalFlip(0.5))
    if jitter:
        steps.append(ColorJitter(jitter, jitter))
    return Compose(steps) if len(steps) > 1 else steps[0]
