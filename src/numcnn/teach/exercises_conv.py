"""The checks of notebooks 1 to 3: convolution by hand, channels and filters, pooling.

Each ``check_*`` takes the learner's answer and returns a Verdict (correct, or not written
yet) or raises ExerciseError saying what is wrong; see ``numcnn.teach.checks``. Expected values
come from numcnn itself, computed outside the learner's calls.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..layers import Conv2d, MaxPool2d
from .checks import Rule, exercise
from .words import say

# What "without numcnn's convolution" rules out: every way numcnn convolves or unfolds.
CONVOLUTIONS = Rule("numcnn's convolution", (
    "numcnn.functional:conv2d", "numcnn.functional:conv2d_forward", "numcnn.functional:conv2d_backward",
    "numcnn.functional:im2col", "numcnn.functional:conv_transpose2d", "numcnn.functional:conv_transpose2d_forward",
    "numcnn.functional.reference:conv_forward", "numcnn.functional.reference:conv_backward",
    "numcnn.functional.reference:im2col"))
MAX_POOLING = Rule("numcnn's max pooling", (
    "numcnn.functional:max_pool2d", "numcnn.functional:max_pool2d_forward", "numcnn.functional:max_pool2d_backward",
    "numcnn.functional:max_pool2d_indices", "numcnn.functional.reference:max_pool_forward",
    "numcnn.functional.reference:max_pool_backward"))


def _out_size_cases():
    rng = np.random.default_rng(1)
    for _ in range(200):
        fh, s, p = (int(v) for v in (rng.integers(1, 6), rng.integers(1, 4), rng.integers(0, 3)))
        h = int(rng.integers(max(1, fh - 2 * p), 20))
        yield h, fh, p, s, F.output_size(h, fh, s, p, p, 1)


def check_out_size(out_size):
    """``out_size(H, FH, P, S)``: the output height, without numcnn's help."""
    def run(fn):
        for h, fh, p, s, expected in _out_size_cases():
            got = fn(h, fh, p, s)
            assert got == expected, f"out_size({h}, {fh}, {p}, {s}) = {got}, numcnn gives {expected}"
    return exercise(say("exercise {n} ({name})", n=1, name="out_size"), run, out_size,
                    rule=Rule("numcnn's output_size", ("numcnn.functional:output_size",)) + CONVOLUTIONS)


def check_padding(padding):
    """The padding that keeps a 28x28 input 28x28 under a 5x5 kernel at stride 1."""
    def run(p):
        side = F.output_size(28, 5, 1, p, p, 1)
        assert side == 28, f"padding={p} gives a {side}x{side} output"
    return exercise(say("exercise {n} ({name})", n=2, name="padding"), run, padding)


def check_edge_kernel(kernel):
    """A 3x3 kernel: zero on flat regions and horizontal edges, non-zero along a vertical edge."""
    def run(kernel):
        kernel = np.asarray(kernel, dtype=np.float64)
        assert kernel.shape == (3, 3), f"the kernel should be 3x3, got shape {kernel.shape}"
        kernel = kernel.reshape(1, 1, 3, 3)
        flat = np.full((1, 1, 8, 8), 0.7)
        vertical = np.zeros((1, 1, 8, 8))
        vertical[..., 4:] = 1.0                                         # dark left, bright right
        horizontal = vertical.transpose(0, 1, 3, 2).copy()             # dark top, bright bottom
        assert np.allclose(F.conv2d(flat, kernel), 0), "a flat region should give 0"
        assert np.allclose(F.conv2d(horizontal, kernel), 0), "a horizontal edge should give 0"
        response = F.conv2d(vertical, kernel)[0, 0]
        assert np.all(np.abs(response[:, 2:4]) > 0), "the vertical edge should give a non-zero response"
        assert np.allclose(response[:, [0, 5]], 0), "away from the edge the response should be 0"
    return exercise(say("exercise {n} ({name})", n=3, name="edge_kernel"), run, kernel)


def check_conv_params(conv_params):
    """``conv_params(in_channels, out_channels, kernel_size)``: weights plus biases of a
    square-kernel Conv2d, counted without building one."""
    cases = [(1, 30, 5), (3, 16, 3), (64, 128, 1), (16, 8, 7), (5, 2, 2)]
    expected = [Conv2d(c_in, c_out, k).num_params() for c_in, c_out, k in cases]

    def run(fn):
        for (c_in, c_out, k), count in zip(cases, expected):
            got = fn(c_in, c_out, k)
            assert got == count, f"conv_params({c_in}, {c_out}, {k}) = {got}, the layer has {count}"
    return exercise(say("exercise {n} ({name})", n=1, name="conv_params"), run, conv_params,
                    rule=Rule("nc.Conv2d", ("numcnn.layers:Conv2d",)))


def check_gray(weight):
    """The (1, 3, 1, 1) weight of a 1x1 convolution from RGB to luminance."""
    def run(weight):
        weight = np.asarray(weight, dtype=np.float64)
        assert weight.shape == (1, 3, 1, 1), f"the weight should be (1, 3, 1, 1), got {weight.shape}"
        rgb = np.random.default_rng(2).random((2, 3, 5, 5))
        expected = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
        got = F.conv2d(rgb, weight)[:, 0]
        assert np.allclose(got, expected), f"gray differs from 0.299 R + 0.587 G + 0.114 B by up to " \
                                           f"{np.abs(got - expected).max():.3g}"
    return exercise(say("exercise {n} ({name})", n=2, name="gray_weight"), run, weight)


def check_conv_multi(conv_multi):
    """``conv_multi(x, w)``: a multi-channel convolution from one-channel ones, without
    numcnn's convolution."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2))
    expected = F.conv2d(x, w)

    def run(fn):
        got = np.asarray(fn(x, w))
        assert got.shape == expected.shape, f"expected shape {expected.shape}, got {got.shape}"
        error = np.abs(got - expected).max()
        assert error < 1e-9, f"the output differs from F.conv2d by up to {error:.3g}"
    return exercise(say("exercise {n} ({name})", n=3, name="conv_multi"), run, conv_multi, rule=CONVOLUTIONS)


def check_max_pool_grad(max_pool_grad):
    """``max_pool_grad(x, dout)``: dx of 2x2, stride-2 max pooling on one (H, W) channel."""
    rng = np.random.default_rng(4)
    x, dout = rng.standard_normal((6, 8)), rng.standard_normal((3, 4))
    layer = MaxPool2d(2)
    layer.forward(x[None, None])
    expected = layer.backward(dout[None, None])[0, 0]

    def run(fn):
        got = np.asarray(fn(x, dout))
        assert got.shape == expected.shape, f"dx should have the input's shape {expected.shape}, got {got.shape}"
        wrong = np.argwhere(~np.isclose(got, expected))
        assert not len(wrong), f"dx{tuple(wrong[0])} = {got[tuple(wrong[0])]:.4g}, expected " \
                               f"{expected[tuple(wrong[0])]:.4g}"
    return exercise(say("exercise {n} ({name})", n=1, name="max_pool_grad"), run, max_pool_grad, rule=MAX_POOLING)


def check_corners(include_pad, exclude_pad):
    """The top-left output of 3x3 average pooling (stride 1, padding 1) on a 5x5 image of 2.0s,
    with count_include_pad True and False."""
    twos = np.full((1, 1, 5, 5), 2.0)
    expected = [F.avg_pool2d(twos, 3, 1, 1, count_include_pad=flag)[0, 0, 0, 0] for flag in (True, False)]

    def run(include, exclude):
        assert np.isclose(include, expected[0]), f"(a), padding counted: {include} is not right"
        assert np.isclose(exclude, expected[1]), f"(b), padding not counted: {exclude} is not right"
    return exercise(say("exercise {n} ({name})", n=2, name="corners"), run, include_pad, exclude_pad)


def check_commute(answers):
    """{"max_pool": bool, "avg_pool": bool}: does each pooling commute with ReLU?"""
    x = np.random.default_rng(5).standard_normal((4, 3, 8, 8))
    truth = {name: bool(np.allclose(F.relu(pool(x, 2)), pool(F.relu(x), 2)))
             for name, pool in (("max_pool", F.max_pool2d), ("avg_pool", F.avg_pool2d))}

    def run(answers):
        for name, commutes in truth.items():
            assert answers.get(name) == commutes, f"{name}: {answers.get(name)} is not right"
    return exercise(say("exercise {n} ({name})", n=3, name="commute"), run, answers)
