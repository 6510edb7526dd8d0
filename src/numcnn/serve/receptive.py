"""The receptive field: the pixels of the input image that can change one output pixel.

It is traced back from the pixel through every layer before it, one axis at a time (every
window numcnn slides is a rows x columns product, so the rows and the columns are traced
apart). A set of rows on a layer's output becomes the rows its windows read on its input:

    conv, pooling  row r reads r*S - P_top + i*D for each tap i < K
    transposed     row r gathers input h where h*S - P_top + i*D == r for some tap i
    adaptive pool  row r reads [floor(r*H/OH), ceil((r+1)*H/OH))
    global pool, Flatten, Linear: every row
    elementwise (ReLU, batch norm, dropout, ...): the same rows
    a block        the union of what its branches read (body and shortcut, or the identity)

Rows outside the input are padding and are dropped: they hold no pixel. The answer is the
bounding box of what is left (exact: each step maps a union of rows to the union of their
images, so its extremes survive any number of branches).

``field`` is the pure part (steps in, index sets out); ``step_of`` turns a layer into a step.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import numpy as np

from ..functional import pair, resolve_padding
from ..functional.adaptive import adaptive_bounds
from ..functional.pool import pool_window
from ..layers import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm, Conv2d, ConvTranspose2d, Dropout,
                      LeakyReLU, MaxPool2d, Normalize, ReLU, Sigmoid, Softmax, Tanh)
from ..model import Residual
from .blocks import Node

__all__ = ["Slide", "Fit", "Whole", "Same", "Branches", "field", "trace", "step_of", "node_step", "chain", "plane"]

ELEMENTWISE = (ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, BatchNorm, Dropout, Normalize)


class Slide(NamedTuple):
    """A window sliding over the input (conv, pooling): kernel, stride, dilation (rows, cols);
    pads_before (top, left); size (H, W) of the input. transposed: a transposed convolution,
    where each input pixel is spread over such a window of the output instead."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads_before: tuple[int, int]
    dilation: tuple[int, int]
    size: tuple[int, int]
    transposed: bool = False


class Fit(NamedTuple):
    """Adaptive pooling: windows fitted to the output size. size (H, W) in, out (OH, OW)."""

    size: tuple[int, int]
    out: tuple[int, int]


class Whole(NamedTuple):
    """Every output pixel reads the whole input of size (H, W)."""

    size: tuple[int, int]


class Same(NamedTuple):
    """Pixel for pixel: each output pixel reads the input pixel at its place."""


class Branches(NamedTuple):
    """Chains side by side whose outputs are added (a Residual): the union of what each reads.
    An empty chain is the identity; one chain alone is a Sequential."""

    chains: tuple[tuple, ...]


Step = Union[Slide, Fit, Whole, Same, Branches]


def _back(step, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The input rows and columns that step's output rows and columns read, each sorted, unique."""
    if isinstance(step, Same):
        return rows, cols
    if isinstance(step, Branches):
        found = [field(chain, rows, cols) for chain in step.chains]
        return (np.unique(np.concatenate([r for r, _ in found])), np.unique(np.concatenate([c for _, c in found])))
    return tuple(_axis(step, axis, (rows, cols)[axis]) for axis in (0, 1))


def _axis(step, axis: int, index: np.ndarray) -> np.ndarray:
    size = step.size[axis]
    if index.size == 0:  # nothing depends on what is before: nothing reaches it there either
        return index
    if isinstance(step, Whole):
        return np.arange(size)
    if isinstance(step, Fit):
        starts, ends = adaptive_bounds(size, step.out[axis])
        inputs = np.arange(size)
        read = (inputs >= starts[index, None]) & (inputs < ends[index, None])
        return inputs[read.any(axis=0)]
    taps = np.arange(step.kernel[axis]) * step.dilation[axis] - step.pads_before[axis]
    stride = step.stride[axis]
    if not step.transposed:
        read = (index[:, None] * stride + taps).ravel()
    else:  # h*S + tap == r, so h = (r - tap) / S where that divides
        offset = (index[:, None] - taps).ravel()
        read = offset[offset % stride == 0] // stride
    return np.unique(read[(read >= 0) & (read < size)])


def field(chain, rows, cols) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of the chain's input that its output rows and columns depend on.

    Parameters
    ----------
    chain : steps from the input to the output, first applied first
    rows, cols : int sequences, indices on the chain's output

    Returns
    -------
    (rows, cols): sorted unique int arrays on the chain's input (a plane of 1 x K for a
    vector); the bounding box of the region is (rows[0], rows[-1]) x (cols[0], cols[-1]).
    """
    rows, cols = np.unique(np.asarray(rows, dtype=np.int64)), np.unique(np.asarray(cols, dtype=np.int64))
    for step in reversed(tuple(chain)):
        rows, cols = _back(step, rows, cols)
    return rows, cols


def trace(labelled, y: int, x: int) -> list[dict]:
    """The region on each layer's input, going back from output pixel (y, x) of the last.

    labelled : [(name, step)], first applied first
    returns  : [{"path": name, "rows": [first, last], "cols": [first, last]}], last layer first;
               the final entry's region is on the chain's input. A window that holds nothing
               but padding (or a transposed conv's output no input reaches) reads no pixel:
               its "rows" and "cols" are None.
    """
    rows, cols = np.array([y]), np.array([x])
    regions = []
    for name, step in reversed(labelled):
        rows, cols = _back(step, rows, cols)
        empty = rows.size == 0 or cols.size == 0
        regions.append({"path": name, "rows": None if empty else [int(rows[0]), int(rows[-1])],
                        "cols": None if empty else [int(cols[0]), int(cols[-1])]})
    return regions


def plane(shape) -> tuple[int, int]:
    """(H, W) of a layer's output of shape (C, H, W), or (1, K) of a vector (K,), as the page draws it."""
    return (int(shape[1]), int(shape[2])) if len(shape) == 3 else (1, int(shape[-1]))


def step_of(layer, in_shape, out_shape) -> Step:
    """The step a leaf layer takes, given its input and output shapes (C, H, W) or (K,)."""
    size = plane(in_shape)
    if isinstance(layer, ELEMENTWISE):
        return Same()
    if isinstance(layer, Conv2d):
        kernel, stride = layer.kernel_size, pair(layer.stride, "stride", 1)
        dilation = pair(layer.dilation, "dilation", 1)
        pads = resolve_padding(layer.padding, kernel, dilation, stride)
        return Slide(kernel, stride, (pads[0], pads[2]), dilation, size)
    if isinstance(layer, ConvTranspose2d):
        return Slide(layer.kernel_size, pair(layer.stride, "stride", 1), pair(layer.padding, "padding"),
                     pair(layer.dilation, "dilation", 1), size, transposed=True)
    if isinstance(layer, (AdaptiveAvgPool2d, AdaptiveMaxPool2d)):
        return Fit(size, plane(out_shape))
    if isinstance(layer, (MaxPool2d, AvgPool2d)):
        win = pool_window((1, *in_shape), layer.kernel_size, layer.stride, layer.padding, type(layer).__name__,
                          getattr(layer, "dilation", 1), layer.ceil_mode)
        return Slide((win.kh, win.kw), (win.sh, win.sw), (win.pads[0], win.pads[2]), (win.dh, win.dw), size)
    return Whole(size)  # GlobalAvgPool2d, Flatten, Linear, and any layer we cannot see into


def chain(node: Node, by_path: dict[str, Node], shapes: dict[str, tuple], image_shape) -> list[tuple[str, Step]]:
    """[(path, step)] from the model's input to node's output, first applied first: every layer
    node reads through, a block read whole as one Branches step.

    by_path: every node of the tree by path; shapes: every layer's output shape by path (no N);
    image_shape: the model's input (C, H, W).
    """
    found = []
    while node is not None:
        found.append((node.path, node_step(node, shapes, image_shape)))
        node = by_path.get(node.input_path)
    return found[::-1]


def node_step(node: Node, shapes: dict[str, tuple], image_shape) -> Step:
    """The step of one node: a leaf's own, a block's its branches side by side."""
    if node.children:
        body = tuple(node_step(child, shapes, image_shape) for child in node.body)
        if not isinstance(node.layer, Residual):
            return Branches((body,))
        skip = (node_step(node.shortcut, shapes, image_shape),) if node.shortcut is not None else ()
        return Branches((body, skip))
    in_shape = image_shape if node.input_path is None else shapes[node.input_path]
    return step_of(node.layer, in_shape, shapes[node.path])
