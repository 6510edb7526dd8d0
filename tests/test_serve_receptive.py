"""The receptive field numcnn serve draws: traced back to the input image through every layer.

Checked by brute force with numcnn itself: in a model whose every weight, bias and statistic
keeps the activations positive and increasing in every input, a pixel of a layer changes when
an input pixel is raised exactly when that input pixel is in its receptive field (max pooling
too: the raised pixel's path then wins). One batch holds the image with each pixel raised in
turn, and the pixels whose raising changed the output give the region to compare.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette", reason="numcnn serve needs the serve extra: pip install 'numcnn[serve]'")

from starlette.testclient import TestClient  # noqa: E402

import numcnn  # noqa: E402
from numcnn.layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm, Conv2d, ConvTranspose2d, Flatten,  # noqa: E402
                           Linear, MaxPool2d, ReLU)
from numcnn.model import Sequential  # noqa: E402
from numcnn.serve.app import create_app  # noqa: E402
from numcnn.serve.explain import Explainer  # noqa: E402
from numcnn.serve.receptive import Branches, Fit, Same, Slide, Whole, field  # noqa: E402
from test_serve_blocks import block_model, output_of  # noqa: E402

F64 = np.float64


def monotone(model: Sequential) -> Sequential:
    """model (float64) with small positive weights and biases, batch norms that only scale and shift up:
    every activation positive and strictly increasing in every input it reads."""
    rng = np.random.default_rng(0)
    for _, layer in model.named_layers():
        for key, value in layer.params.items():
            layer.params[key] = rng.uniform(0.05, 0.15, value.shape).astype(value.dtype)
        if isinstance(layer, BatchNorm):
            layer.buffers["running_mean"][:] = 0
            layer.buffers["running_var"][:] = 1
    return model.eval()


def influence(model, path: str, y: int, x: int, shape) -> tuple[list[int], list[int]]:
    """[first, last] row and column of the input pixels whose raising changes (channel 0, y, x)
    of the layer at path (x the feature of a vector output)."""
    c, h, w = shape
    base = np.random.default_rng(1).uniform(0.1, 0.2, (1, c, h, w))
    raised = np.repeat(base, h * w + 1, axis=0)
    raised[1 + np.arange(h * w), 0, np.arange(h * w) // w, np.arange(h * w) % w] += 1.0
    _, out = output_of(model, path, raised)
    values = out[:, 0, y, x] if out.ndim == 4 else out[:, x]
    # A raised pixel moves what it reaches by far more than 1e-12; a sum taken in another order
    # (another chunk of the batch) only by float64's rounding.
    changed = np.flatnonzero(np.abs(values[1:] - values[0]) > 1e-12)
    rows, cols = changed // w, changed % w
    return [int(rows.min()), int(rows.max())], [int(cols.min()), int(cols.max())]


@pytest.fixture(scope="module")
def blocks():
    model = monotone(block_model())
    return model, Explainer(model, {"classes": ["a", "b", "c"]})


@pytest.mark.parametrize("path, y, x", [
    ("0", 0, 0), ("0", 6, 11), ("2", 5, 5), ("3.0", 0, 7), ("3.3", 11, 0), ("3.3", 6, 6), ("3", 2, 9), ("4", 11, 11),
    ("5.0", 0, 0), ("5.3", 3, 2), ("5.shortcut.0", 2, 4), ("5.shortcut", 5, 5), ("5", 0, 5), ("5", 3, 3),
    ("7", 1, 1), ("7", 0, 2), ("8.0", 0, 0), ("8.1", 2, 1), ("9", 0, 0), ("12", 0, 4)])
def test_the_receptive_field_is_every_input_pixel_that_changes_the_output(blocks, path, y, x):
    model, explainer = blocks
    answer = explainer.receptive(path, y, x)
    rows, cols = influence(model, path, y, x, explainer.input_shape)
    assert (answer["rows"], answer["cols"]) == (rows, cols)
    assert (answer["height"], answer["width"]) == (rows[1] - rows[0] + 1, cols[1] - cols[0] + 1)
    assert answer["trace"][0]["path"] == path and answer["trace"][-1]["rows"] == rows


def test_the_receptive_field_through_dilation_ceil_mode_a_transposed_conv_and_adaptive_pooling():
    numcnn.manual_seed(2)
    model = monotone(Sequential(
        Conv2d(1, 2, 3, stride=2, padding=2, dilation=2, dtype=F64), ReLU(),          # 13 -> 6, holes in each window
        MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),                                # 6 -> 3
        ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1, dtype=F64),    # 3 -> 6
        AdaptiveAvgPool2d((4, 5)), AvgPool2d(2, ceil_mode=True),                       # -> 2 x 3
        Flatten(), Linear(12, 3, dtype=F64), input_shape=(1, 13, 13)))
    explainer = Explainer(model, {"classes": ["a", "b", "c"]})
    for path, shape in explainer.shapes.items():
        if len(shape) == 3:
            for y, x in {(0, 0), (shape[1] - 1, shape[2] - 1), (shape[1] // 2, shape[2] // 3)}:
                answer = explainer.receptive(path, y, x)
                assert (answer["rows"], answer["cols"]) == influence(model, path, y, x, (1, 13, 13)), (path, y, x)


def test_a_dilated_window_at_the_edge_reads_from_its_first_real_tap():
    # Taps at rows -1, 1, 3 of a 3-tap kernel dilated by 2 with padding 1: row 0 falls in a gap.
    step = Slide((3, 3), (1, 1), (1, 1), (2, 2), (8, 8))
    rows, cols = field([step], [0], [4])
    assert rows.tolist() == [1, 3] and cols.tolist() == [3, 5, 7]


def test_a_window_wholly_in_the_padding_reads_no_pixel(tmp_path):
    model = Sequential(Conv2d(1, 2, 3, padding=3, dtype=F64), ConvTranspose2d(2, 2, 1, stride=2, dtype=F64),
                       Flatten(), Linear(2 * 19 * 19, 3, dtype=F64), input_shape=(1, 6, 6))
    explainer = Explainer(model, {"classes": ["a", "b", "c"]})
    corner = explainer.receptive(0, 0, 0)  # rows -3..-1: all padding
    assert corner["rows"] is None and (corner["height"], corner["width"]) == (0, 0)
    assert explainer.receptive(0, 2, 2)["rows"] == [0, 1]
    assert explainer.receptive(1, 9, 9)["height"] == 0  # an odd row of a stride-2, 1x1 transposed conv
    assert explainer.receptive(1, 8, 8)["rows"] == [1, 3]  # conv row 4 (of 10) reads rows 1..3


def test_a_chain_of_convolutions_grows_as_the_textbook_says():
    # Interior pixel, no padding reached: 1 + sum (k_i - 1) * (product of the strides before i).
    layers = [(3, 1), (3, 2), (5, 1), (3, 2), (3, 1)]
    size, chain, jump = 64, [], 1
    expected = 1
    for kernel, stride in layers:
        chain.append(Slide((kernel, kernel), (stride, stride), (0, 0), (1, 1), (size, size)))
        expected += (kernel - 1) * jump
        jump *= stride
        size = (size - kernel) // stride + 1
    rows, cols = field(chain, [2], [2])
    assert rows[-1] - rows[0] + 1 == expected == cols[-1] - cols[0] + 1 == 1 + 2 + 2 + 4 * 2 + 2 * 2 + 2 * 4


def test_branches_read_the_union_and_global_steps_the_whole_input():
    body = (Slide((3, 3), (1, 1), (1, 1), (1, 1), (10, 10)),)
    rows, cols = field([Branches((body, ()))], [0], [9])
    assert rows.tolist() == [0, 1] and cols.tolist() == [8, 9]
    rows, cols = field([Branches(((Slide((1, 1), (2, 2), (0, 0), (1, 1), (10, 10)),), ()))], [3], [4])
    assert rows.tolist() == [3, 6] and cols.tolist() == [4, 8]  # the strided shortcut reads (6, 8), identity (3, 4)
    assert field([Whole((5, 7)), Same()], [0], [2])[1].tolist() == list(range(7))
    assert field([Fit((10, 10), (3, 3))], [1], [2])[0].tolist() == [3, 4, 5, 6]  # floor(10/3), ceil(20/3)


def test_the_receptive_route_answers_json_and_explains_a_bad_pixel(blocks):
    _, explainer = blocks
    with TestClient(create_app(explainer)) as client:
        answer = client.get("/api/receptive?layer=3.3&y=6&x=6")
        assert answer.status_code == 200
        got = answer.json()
        assert got["rows"] == [3, 9] and got["width"] == 7 and got["input_size"] == [12, 12]
        for query, message in (("layer=3.3&y=12&x=0", "y must be from 0 to 11"), ("layer=12&y=1&x=0", "y must be"),
                               ("layer=99&y=0&x=0", "layer must be"), ("y=0&x=0", "layer is required")):
            answer = client.get(f"/api/receptive?{query}")
            assert answer.status_code == 400 and message in answer.json()["error"], query
