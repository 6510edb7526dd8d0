"""Pictures of a run: learning curves, filters, feature maps, confusion matrix, mistakes.

matplotlib is imported inside each function, and figures are drawn on an Agg canvas of
their own (no pyplot), so importing numcnn never needs matplotlib and plotting never touches
the global backend of an interactive session. Every function writes one PNG and returns its path;
``plot_run`` redraws all of a run folder's from its model, history and data.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from . import data, recipe
from .backend import to_device, to_numpy
from .data.loader import as_float_images
from .errors import ConfigError, DataError, ModelFileError, ShapeError
from .layers import Conv2d
from .model import read_model
from .rundir import HISTORY, PLOTS

__all__ = ["missing_dependency", "plot_history", "first_conv", "plot_filters", "plot_feature_maps", "confusion_matrix",
           "plot_confusion", "plot_misclassified", "plot_model", "plot_run"]


def missing_dependency() -> str | None:
    """None if the plots can be drawn, else one sentence saying what to install."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'numcnn[train]')"
    return None


def _figure(width: float, height: float):
    """A matplotlib Figure attached to its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return path


def _grid(n: int, columns: int | None = None) -> tuple[int, int]:
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols


def _tiles(images: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(N, C, H, W) -> (N, H, W) gray tiles, or (N, H, W, 3) for RGB; and the colormap."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape[1] == 3:
        return np.clip(images.transpose(0, 2, 3, 1), 0, 1), None
    return images[:, 0], "gray"


def _mosaic(tiles: np.ndarray, cols: int, gap: int = 1) -> np.ndarray:
    """Tiles (N, H, W[, 3]) laid out in rows of ``cols``, separated by ``gap`` NaN pixels.

    One image in one axes draws many times faster than a subplot per tile; the NaN gaps
    show as the background colour.
    """
    n, h, w = tiles.shape[:3]
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, *tiles.shape[3:]), np.nan, np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out


def _show(ax, image: np.ndarray, cmap, **kw) -> None:
    ax.imshow(np.ma.masked_invalid(image) if image.ndim == 2 else np.nan_to_num(image, nan=1.0),
              cmap=cmap, interpolation="nearest", **kw)
    ax.axis("off")


def plot_history(history: dict, path) -> Path:
    """Loss and accuracy per epoch, training and validation, side by side.

    Parameters
    ----------
    history
        the Trainer's dict of lists (epoch, loss, accuracy, val_loss, val_accuracy, ...);
        validation entries that are None are left out.
    """
    epochs = list(history.get("epoch") or [])
    if not epochs:
        raise DataError("plot_history: the history has no epochs")
    fig = _figure(10, 4)
    for ax, key, title in zip(fig.subplots(1, 2), ("loss", "accuracy"), ("loss", "accuracy")):
        for prefix, label, style in (("", "train", "o-"), ("val_", "validation", "s--")):
            values = history.get(prefix + key) or []
            points = [(e, v) for e, v in zip(epochs, values) if v is not None]
            if points:
                ax.plot(*zip(*points), style, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        if len(epochs) < 15:
            ax.set_xticks(epochs)
    return _save(fig, path)


def first_conv(model) -> Conv2d:
    for _, layer in model.named_layers():
        if isinstance(layer, Conv2d):
            return layer
    raise ConfigError("the model has no Conv2d layer, so it has no filters to show")


def plot_filters(model, path) -> Path:
    """The first convolution's filters as a grid, each scaled to its own min..max.

    For a multi-channel input the filters are shown as RGB if there are 3 channels, else
    channel 0 alone.
    """
    weight = to_numpy(first_conv(model).params["weight"]).astype(np.float32)  # (F, C, KH, KW), on the host
    n, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
    w = weight if weight.shape[1] == 3 else weight[:, :1]
    low = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - low
    tiles, cmap = _tiles((w - low) / np.where(span > 0, span, 1))
    rows, cols = _grid(n)
    fig = _figure(max(3.0, 0.75 * cols), max(2.0, 0.75 * rows) + 0.4)
    ax = fig.subplots()
    _show(ax, _mosaic(tiles, cols), cmap)
    ax.set_title(f"first conv layer: {n} filters of {kh}x{kw}")
    return _save(fig, path)


def plot_feature_maps(model, x_one, path, max_channels: int = 8) -> Path:
    """The activations of one image, layer by layer (every layer with a (C, H, W) output).

    Each row is one layer's output, its first max_channels channels; the first row is the input
    (in colour for RGB). Runs in eval mode and restores the previous mode.

    Parameters
    ----------
    model : Layer
        The model.
    x_one : ndarray, shape (C, H, W) or (1, C, H, W)
        Floats in [0, 1] or uint8 pixels.
    path : str or path
        The image file to write.
    max_channels : int, default 8
        The channels shown per layer.

    Returns
    -------
    Path
        path.
    """
    x = as_float_images(np.asarray(x_one)).astype(np.float32, copy=False)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ShapeError(f"plot_feature_maps: expected one image (C, H, W) or (1, C, H, W), got {x.shape}")
    layers = list(model.layers) if hasattr(model, "layers") else [model]
    rows = [("input", x[0])]
    with model.evaluating():
        out = to_device(x, model.device)  # computed where the model is, drawn from host copies
        for i, layer in enumerate(layers):
            out = layer.forward(out)
            if out.ndim == 4 and out.shape[-1] > 1:
                rows.append((f"{i}: {type(layer).__name__}", to_numpy(out[0])))
    cols = min(max_channels, max(r[1].shape[0] for r in rows))
    fig = _figure(cols * 1.1 + 1.4, len(rows) * 1.15 + 0.4)
    axes = np.atleast_1d(fig.subplots(len(rows), 1))
    for ax, (name, maps) in zip(axes, rows):
        # One mosaic per row; each map keeps its own colour scale, as separate plots would.
        if name == "input" and maps.shape[0] == 3:  # the picture itself, in colour
            tiles, cmap = _tiles(maps[None])
            row = _mosaic(tiles, cols, gap=max(1, maps.shape[-1] // 8))
        else:
            maps = maps[:cols].astype(np.float32)
            low = maps.min(axis=(1, 2), keepdims=True)
            span = maps.max(axis=(1, 2), keepdims=True) - low
            row = _mosaic((maps - low) / np.where(span > 0, span, 1), cols, gap=max(1, maps.shape[-1] // 8))
            cmap = "gray" if name == "input" else "viridis"
        _show(ax, row, cmap)
        ax.text(-2, row.shape[0] / 2, name, ha="right", va="center", fontsize=8)
        ax.set_anchor("W")
    axes[0].set_title(f"feature maps of one image, layer by layer (first {cols} channels)", loc="left")
    return _save(fig, path)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """counts[i, j] = how many samples of class i were predicted as j; (K, K) int64."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def plot_confusion(y_true, y_pred, class_names: Sequence[str], path) -> Path:
    """Confusion matrix: rows are true classes, columns predictions, cells counts (coloured by
    the fraction of the row)."""
    k = len(class_names)
    counts = confusion_matrix(y_true, y_pred, k)
    fraction = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = _figure(1.0 + 0.6 * k, 0.6 + 0.6 * k)
    ax = fig.subplots()
    ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if fraction[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), labels=class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels=class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"confusion matrix ({counts.sum()} samples, accuracy {accuracy:.2%})")
    return _save(fig, path)


def plot_misclassified(x, y_true, y_pred, class_names: Sequence[str], path, max_items: int = 25) -> Path:
    """A grid of the first max_items misclassified images (in colour for RGB), titled "true -> predicted".

    Parameters
    ----------
    x
        (N, C, H, W) floats in [0, 1] or uint8 pixels; y_true, y_pred: (N,).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = np.flatnonzero(y_true != y_pred)[:max_items]
    total = int((y_true != y_pred).sum())
    cols = min(5, max(len(wrong), 1))
    rows = max(1, math.ceil(len(wrong) / cols))
    fig = _figure(cols * 1.9, rows * 2.1 + 0.4)
    ax = fig.subplots()
    ax.axis("off")
    if len(wrong):
        tiles, cmap = _tiles(as_float_images(np.asarray(x)[wrong]))
        h, w = tiles.shape[1:3]
        top, gap = h // 2, max(2, w // 4)  # blank rows above each tile hold its caption
        tiles = np.pad(tiles, [(0, 0), (top, 0), (0, 0)] + [(0, 0)] * (tiles.ndim - 3), constant_values=np.nan)
        _show(ax, _mosaic(tiles, cols, gap), cmap)
        for k, i in enumerate(wrong):
            r, c = divmod(k, cols)
            ax.text(c * (w + gap) + w / 2, r * (h + top + gap) + top - 1,
                    f"{class_names[y_true[i]]}\n-> {class_names[y_pred[i]]}", ha="center", va="bottom", fontsize=8)
    ax.set_title(f"misclassified: {len(wrong)} of {total} shown (true -> predicted)"
                 if total else "no misclassified images")
    return _save(fig, path)


def plot_model(model, x, y, class_names: Sequence[str], out_dir, history: dict | None = None,
               batch_size: int = 500) -> dict[str, Path]:
    """Every plot of a trained model on a test set (x, y); returns {plot name: path}.

    The filter plot is skipped for a model without convolutions, the learning curves without
    a history.

    Parameters
    ----------
    model : Layer
        The trained model.
    x : ndarray, shape (N, C, H, W)
        Floats in [0, 1] or uint8 pixels.
    y : ndarray, shape (N,)
        Labels.
    class_names : sequence of str
        The K class names.
    out_dir : str or path
        The folder to write the plots into.
    history : dict, optional
        The training history, for the learning curves.
    batch_size : int, default 500
        The samples per forward.
    """
    from .inference import predict_proba

    out_dir = Path(out_dir)
    paths = {}
    if history and history.get("epoch"):
        paths["history"] = plot_history(history, out_dir / PLOTS["history"])
    if any(isinstance(layer, Conv2d) for _, layer in model.named_layers()):
        paths["filters"] = plot_filters(model, out_dir / PLOTS["filters"])
    paths["feature_maps"] = plot_feature_maps(model, x[0], out_dir / PLOTS["feature_maps"])
    y_pred = predict_proba(model, x, batch_size).argmax(axis=1)
    paths["confusion"] = plot_confusion(y, y_pred, class_names, out_dir / PLOTS["confusion"])
    paths["misclassified"] = plot_misclassified(x, y, y_pred, class_names, out_dir / PLOTS["misclassified"])
    return paths


# -- a run folder's plots, redrawn ------------------------------------------------------------------
def read_run(run_dir) -> tuple[object, dict, dict | None]:
    """(model, training config, history or None) of a run folder (model.npz and history.json),
    or of a model file alone (no history)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return (*read_model(run_dir), None)
    if not run_dir.is_dir():
        raise ModelFileError(f"{run_dir}: not a run folder (expected a folder holding model.npz)")
    model, config = read_model(run_dir)
    history = None
    history_path = run_dir / HISTORY
    if history_path.is_file():
        try:
            history = json.loads(history_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{history_path}: not valid JSON ({exc})") from None
        if not isinstance(history, dict):
            raise ModelFileError(f"{history_path}: expected a JSON object of lists")
    return model, config, history


def plot_run(run_dir, dataset: str | None = None, data_dir=None, limit_test: int | None = None,
             out_dir=None, overwrite: bool = False) -> dict[str, Path]:
    """Regenerate every plot of a run folder (or of a model file) from the model, its history
    and its dataset.

    Parameters
    ----------
    dataset, data_dir
        override what the run recorded (its "dataset" and "data_dir").
    limit_test
        use the first N test images; default: the run's own --test-limit, if any.
    out_dir
        where the PNGs go; default run_dir (which must then be a folder), whose own plots
        are redrawn. Another folder holding files of the plots' names is a ConfigError
        unless overwrite.

    Returns
    -------
    dict
        {plot name: path of its PNG}.
    """
    model, config, history = read_run(run_dir)
    if dataset is None and not config.get("dataset"):
        raise ConfigError(f"{run_dir}: the run does not record its dataset; name it (numcnn plot --dataset NAME)")
    dataset, data_dir, options = recipe.data_of(config, dataset, data_dir,  # read as the run read it
                                                getattr(model, "input_shape", None))
    described, folder, _ = data.prepare(dataset, data_dir, download=False, **options)
    _, (x_test, y_test) = described.reader(folder, described)
    limit_test = limit_test or config.get("test_limit")
    if limit_test:
        x_test, y_test = x_test[:limit_test], y_test[:limit_test]
    classes = list(described.classes)
    if dataset != config.get("dataset") and config.get("classes"):  # another dataset's labels, by name
        y_test, classes = data.to_model_labels(y_test, classes, config["classes"]), list(config["classes"])
    out_dir = Path(run_dir if out_dir is None else out_dir)
    if out_dir.is_file():
        raise ConfigError(f"{out_dir}: expected a folder for the plots, got a file"
                          + ("; say where the plots go (numcnn plot --out FOLDER)" if out_dir == Path(run_dir) else ""))
    if out_dir.resolve() != Path(run_dir).resolve() and not overwrite:
        taken = [name for name in PLOTS.values() if (out_dir / name).exists()]
        if taken:
            raise ConfigError(f"{out_dir} already holds {', '.join(taken)}; pass overwrite (--overwrite) "
                              f"to replace them, or choose another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    return plot_model(model, x_test, y_test, classes, out_dir, history)
