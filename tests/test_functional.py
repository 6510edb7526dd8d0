"""The stateless kernels in numcnn.functional, against PyTorch (every size the strategies draw)
and against the naive loops in reference.py (tiny sizes), in float64 and float32."""

import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

from numcnn import functional as F
from numcnn.functional.layout import span
from parity import (DTYPES, Kernel, assert_close, check_against_torch, conv_configs, dtypes, layer_args,
                    pool_configs, seeds, tied_values, window_configs)
from reference import (avg_pool2d_backward_ref, avg_pool2d_ref, col2im_ref, conv2d_backward_ref, conv2d_ref,
                       im2col_ref, max_pool2d_backward_ref, max_pool2d_ref, pair)

F64 = np.float64
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


# -- adapters: a functional forward/backward pair as a Kernel --------------------------------------

def conv_kernel(config, dtype, rng):
    args = layer_args(config)
    geometry = dict(stride=args["stride"], padding=args["padding"], dilation=args["dilation"],
                    groups=args["groups"])
    params = dict(weight=rng.standard_normal((args["out_channels"], args["in_channels"] // args["groups"])
                                             + pair(args["kernel_size"])).astype(dtype))
    if args["bias"]:
        params["bias"] = rng.standard_normal(args["out_channels"]).astype(dtype)

    def backward(dout, cache):
        dx, dweight, dbias = F.conv2d_backward(dout, cache)
        assert (dbias is None) == (not args["bias"]), "dbias must be None exactly when bias is None"
        return dx, dict(weight=dweight, **({"bias": dbias} if args["bias"] else {}))

    ours = Kernel(lambda x, weight, bias=None: F.conv2d_forward(x, weight, bias, **geometry), backward, **params)
    theirs = lambda t, weight, bias=None: TF.conv2d(t, weight, bias, **geometry)  # noqa: E731
    return ours, theirs, geometry


def unary_kernel(forward, backward, uses_output):
    """A Kernel for an elementwise activation whose backward takes x, or the output y."""
    def fwd(x):
        y = forward(x)
        return y, (y if uses_output else x)
    return Kernel(fwd, lambda dout, saved: (backward(dout, saved), {}))


# -- im2col / col2im -------------------------------------------------------------------------------

@given(config=window_configs(max_kernel=3, max_extra=3), dtype=dtypes, seed=seeds)
def test_im2col_matches_reference(config, dtype, seed):
    x = np.random.default_rng(seed).standard_normal(config["x_shape"]).astype(dtype)
    col = F.im2col(x, **layer_args(config))
    assert col.dtype == dtype
    assert_close("im2col", col, im2col_ref(x, **layer_args(config)), dtype)


@given(config=window_configs(max_kernel=3, max_extra=3), dtype=dtypes, seed=seeds)
def test_col2im_matches_reference(config, dtype, seed):
    geometry = layer_args(config)
    rows, cols = im2col_ref(np.zeros(config["x_shape"]), **geometry).shape
    col = np.random.default_rng(seed).standard_normal((rows, cols)).astype(dtype)
    x = F.col2im(col, config["x_shape"], **geometry)
    assert x.dtype == dtype and x.shape == config["x_shape"]
    assert_close("col2im", x, col2im_ref(col, config["x_shape"], **geometry), dtype)


@given(config=window_configs(), seed=seeds)
def test_col2im_is_the_adjoint_of_im2col(config, seed):
    """<im2col(x), c> == <x, col2im(c)> for every x and c."""
    rng = np.random.default_rng(seed)
    geometry = layer_args(config)
    x = rng.standard_normal(config["x_shape"])
    col = F.im2col(x, **geometry)
    c = rng.standard_normal(col.shape)
    lhs, rhs = np.sum(col * c), np.sum(x * F.col2im(c, x.shape, **geometry))
    assert abs(lhs - rhs) <= 1e-9 * max(abs(lhs), 1.0)


@given(config=window_configs(), dtype=dtypes, seed=seeds)
def test_im2col_matches_torch_unfold(config, dtype, seed):
    x = np.random.default_rng(seed).standard_normal(config["x_shape"]).astype(dtype)
    unfolded = TF.unfold(torch.from_numpy(x), **layer_args(config))
    assert_close("im2col", F.im2col(x, **layer_args(config)),
                 unfolded.transpose(1, 2).reshape(-1, unfolded.shape[1]), dtype)


def test_im2col_layout_is_rows_n_oh_ow_and_columns_c_kh_kw():
    x = np.arange(2 * 2 * 3 * 3, dtype=F64).reshape(2, 2, 3, 3)
    col = F.im2col(x, 2)
    assert col.shape == (2 * 2 * 2, 2 * 2 * 2)
    np.testing.assert_array_equal(col[0], [0, 1, 3, 4, 9, 10, 12, 13])     # n=0, oh=0, ow=0
    np.testing.assert_array_equal(col[1], [1, 2, 4, 5, 10, 11, 13, 14])    # n=0, oh=0, ow=1
    np.testing.assert_array_equal(col[4], x[1, :, :2, :2].reshape(-1))     # n=1, oh=0, ow=0


# -- conv2d ----------------------------------------------------------------------------------------

@given(config=conv_configs(), dtype=dtypes, seed=seeds)
def test_conv2d_matches_torch(config, dtype, seed):
    ours, theirs, _ = conv_kernel(config, dtype, np.random.default_rng(seed))
    check_against_torch(ours, theirs, config["x_shape"], dtype, seed=seed)


@given(config=conv_configs(max_kernel=3, max_extra=3), seed=seeds)
def test_conv2d_matches_reference(config, seed):
    rng = np.random.default_rng(seed)
    ours, _, geometry = conv_kernel(config, F64, rng)
    x = rng.standard_normal(config["x_shape"])
    weight, bias = ours.params["weight"], ours.params.get("bias")
    out = ours.forward(x)
    assert_close("conv2d", out, conv2d_ref(x, weight, bias, **geometry), F64)
    dout = rng.standard_normal(out.shape)
    dx = ours.backward(dout)
    ref_dx, ref_dweight, ref_dbias = conv2d_backward_ref(dout, x, weight, bias is not None, **geometry)
    assert_close("conv2d dx", dx, ref_dx, F64)
    assert_close("conv2d dweight", ours.grads["weight"], ref_dweight, F64)
    if bias is not None:
        assert_close("conv2d dbias", ours.grads["bias"], ref_dbias, F64)


@given(config=conv_configs(), dtype=dtypes, seed=seeds, input_grad=st.booleans())
def test_conv2d_with_a_fused_relu_is_the_relu_of_the_conv_bit_for_bit(config, dtype, seed, input_grad):
    """relu=True gives relu(conv(x)), and backward the gradient through both, to the last bit
    (every path: GEMM by wide rows or strided columns, 1x1, depthwise). Exact zeros and NaN
    pre-activations are where a mask taken from the output could differ from one taken from x."""
    rng = np.random.default_rng(seed)
    ours, _, geometry = conv_kernel(config, dtype, rng)
    weight, bias = ours.params["weight"], ours.params.get("bias")
    x = rng.standard_normal(config["x_shape"]).astype(dtype)
    x.flat[rng.integers(0, x.size, 2)] = 0.0
    if rng.random() < 0.3:
        x.flat[rng.integers(0, x.size)] = np.nan
    with np.errstate(invalid="ignore"):
        out, cache = F.conv2d_forward(x, weight, bias, **geometry)
        expected = F.relu(out)
        fused, fused_cache = F.conv2d_forward(x, weight, bias, relu=True, **geometry)
    np.testing.assert_array_equal(fused, expected)
    dout = rng.standard_normal(out.shape).astype(dtype)
    want = F.conv2d_backward(F.relu_backward(dout, out), cache, input_grad)
    got = F.conv2d_backward(dout, fused_cache, input_grad)
    for name, a, b in zip(("dx", "dweight", "dbias"), got, want):
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=name)


@given(config=conv_configs(), dtype=dtypes, seed=seeds)
def test_conv2d_backward_without_the_input_gradient_gives_the_same_weight_gradients(config, dtype, seed):
    rng = np.random.default_rng(seed)
    ours, _, geometry = conv_kernel(config, dtype, rng)
    x = rng.standard_normal(config["x_shape"]).astype(dtype)
    out, cache = F.conv2d_forward(x, ours.params["weight"], ours.params.get("bias"), **geometry)
    dout = rng.standard_normal(out.shape).astype(dtype)
    _, dweight, dbias = F.conv2d_backward(dout, cache)
    no_dx, dweight_only, dbias_only = F.conv2d_backward(dout, cache, input_grad=False)
    assert no_dx is None
    np.testing.assert_array_equal(dweight_only, dweight)
    if dbias is not None:
        np.testing.assert_array_equal(dbias_only, dbias)


@pytest.mark.parametrize("budget", [1, 92160, 184320, 8 * 2**20])
def test_conv2d_weight_gradients_do_not_depend_on_input_grad_at_any_chunking(budget, monkeypatch):
    """The chunks are cut the same with or without dx, so dW sums the same shares in order."""
    monkeypatch.setattr(importlib.import_module("numcnn.functional.conv_plans"), "COL_BUDGET_BYTES", budget)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16, 8, 8), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    out, cache = F.conv2d_forward(x, w, np.zeros(16, np.float32), padding=1)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    _, dweight, dbias = F.conv2d_backward(dout, cache)
    _, dweight_only, dbias_only = F.conv2d_backward(dout, cache, input_grad=False)
    np.testing.assert_array_equal(dweight_only, dweight)
    np.testing.assert_array_equal(dbias_only, dbias)


@pytest.mark.parametrize("n, per_sample, out", [(100, 29_000, 0), (100, 29_000, 52_000), (100, 83_000, 18_000),
                                                (100, 166_000, 0), (37, 45_000, 0), (128, 1_200_000, 0),
                                                (3, 2**21, 0), (1, 10, 0), (1000, 1, 3)])
def test_conv_chunks_are_a_power_of_two_of_at_least_the_minimum_under_the_budget(n, per_sample, out):
    """Columns (per_sample bytes a sample) under the budget; as many chunks as carry MIN_CHUNK_BYTES
    of columns or of output (out bytes a sample), the larger, as a power of two up to PIECES."""
    conv = importlib.import_module("numcnn.functional.conv")
    conv_plans = importlib.import_module("numcnn.functional.conv_plans")
    chunks = conv._chunks(n, per_sample, np, out)
    work = max(per_sample, out)
    sizes = [part.stop - part.start for part in chunks]
    assert chunks[0].start == 0 and chunks[-1].stop == n and all(
        a.stop == b.start for a, b in zip(chunks, chunks[1:]))  # the batch, in order, once
    assert all(size * per_sample <= conv_plans.COL_BUDGET_BYTES for size in sizes) or sizes == [1] * n
    if n * per_sample <= conv.PIECES * conv_plans.COL_BUDGET_BYTES:  # cut for threads, not for the budget
        count = len(chunks)
        assert count & (count - 1) == 0 and count <= conv.PIECES
        assert max(sizes) - min(sizes) <= 1
        assert count == 1 or min(sizes) * work >= conv.MIN_CHUNK_BYTES - work
        assert count == conv.PIECES or n * work < 2 * count * conv.MIN_CHUNK_BYTES or count == n


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("budget", [1, 3000])
@pytest.mark.parametrize("case", [
    dict(x_shape=(5, 3, 6, 5), in_channels=3, out_channels=4, kernel_size=3, padding=1),             # stride 1
    dict(x_shape=(5, 2, 7, 6), in_channels=2, out_channels=5, kernel_size=(3, 2), dilation=(1, 2)),  # F > C
    dict(x_shape=(4, 4, 7, 7), in_channels=4, out_channels=4, kernel_size=3, stride=2, groups=2),
    dict(x_shape=(3, 3, 5, 6), in_channels=3, out_channels=6, kernel_size=2, padding=1, groups=3),   # depthwise
], ids=["stride 1", "more filters", "strided grouped", "depthwise"])
def test_conv2d_batch_split_into_chunks(case, budget, dtype, monkeypatch):
    """A column buffer budget of a few samples (or of none) makes the batch run chunk by chunk."""
    monkeypatch.setattr(importlib.import_module("numcnn.functional.conv_plans"), "COL_BUDGET_BYTES", budget)
    config = dict(case, bias=True, stride=case.get("stride", 1), padding=case.get("padding", 0),
                  dilation=case.get("dilation", 1), groups=case.get("groups", 1))
    ours, theirs, _ = conv_kernel(config, dtype, np.random.default_rng(0))
    check_against_torch(ours, theirs, config["x_shape"], dtype, seed=0)


@pytest.mark.parametrize("route", ["correlation", "col2im"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [
    dict(x_shape=(4, 6, 9, 8), in_channels=6, out_channels=5, kernel_size=3, padding=1),
    dict(x_shape=(3, 4, 4, 5), in_channels=4, out_channels=4, kernel_size=(2, 3), padding=(0, 1), dilation=(2, 1)),
    dict(x_shape=(2, 6, 7, 7), in_channels=6, out_channels=4, kernel_size=3, padding=1, groups=2),
    dict(x_shape=(2, 3, 5, 4), in_channels=3, out_channels=3, kernel_size=2, padding=(3, 2)),
], ids=["same", "dilated", "grouped", "padding past the kernel"])
def test_conv2d_input_gradient_by_either_route_matches_torch(case, dtype, route, monkeypatch):
    """The stride-1 input gradient is a correlation or a col2im, by image size: both agree with torch."""
    conv = importlib.import_module("numcnn.functional.conv")
    monkeypatch.setattr(conv, "CORRELATION_MAX_STRETCH", 1e9 if route == "correlation" else 0.0)
    config = dict(case, bias=True, stride=1, padding=case["padding"], dilation=case.get("dilation", 1),
                  groups=case.get("groups", 1))
    k = case["kernel_size"] if isinstance(case["kernel_size"], tuple) else (case["kernel_size"],) * 2
    x = np.zeros(case["x_shape"], np.float32)
    w = np.zeros((case["out_channels"], case["in_channels"] // config["groups"]) + k, np.float32)
    plan = F.conv2d_forward(x, w, None, 1, case["padding"], config["dilation"], config["groups"])[1].plan
    assert conv._correlation_pays(case["out_channels"], case["in_channels"], plan) == (
        route == "correlation")
    ours, theirs, _ = conv_kernel(config, dtype, np.random.default_rng(0))
    check_against_torch(ours, theirs, config["x_shape"], dtype, seed=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_forward_only_matches_torch_and_reference(dtype):
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in [(2, 4, 7, 6), (6, 2, 3, 2), (6,)])
    args = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    out = F.conv2d(x, w, b, **args)
    assert out.dtype == dtype
    assert_close("conv2d", out, TF.conv2d(*map(torch.from_numpy, (x, w, b)), **args), dtype)
    assert_close("conv2d", out, conv2d_ref(x, w, b, **args), dtype)
    assert_close("conv2d, no bias", F.conv2d(x, w, **args), TF.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                                                       **args), dtype)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv2d_same_keeps_the_size_and_valid_shrinks_it(padding):
    x, w = np.ones((1, 1, 5, 6)), np.ones((1, 1, 2, 3))
    expected = (1, 1, 5, 6) if padding == "same" else (1, 1, 4, 4)
    assert F.conv2d(x, w, padding=padding).shape == expected


# -- pooling ---------------------------------------------------------------------------------------

def max_pool_kernel(geometry):
    return Kernel(lambda x: F.max_pool2d_forward(x, **geometry),
                  lambda dout, cache: (F.max_pool2d_backward(dout, cache), {}))


def avg_pool_kernel(geometry):
    return Kernel(lambda x: F.avg_pool2d_forward(x, **geometry),
                  lambda dout, cache: (F.avg_pool2d_backward(dout, cache), {}))


@given(config=pool_configs(), dtype=dtypes, seed=seeds, ties=st.booleans())
def test_max_pool2d_matches_torch(config, dtype, seed, ties):
    geometry = layer_args(config)
    rng = np.random.default_rng(seed)
    x = tied_values(rng, config["x_shape"], dtype) if ties else config["x_shape"]
    check_against_torch(max_pool_kernel(geometry), lambda t: TF.max_pool2d(t, **geometry), x, dtype, seed=seed)


@given(config=pool_configs(max_kernel=3, max_extra=3), seed=seeds, ties=st.booleans())
def test_max_pool2d_matches_reference(config, seed, ties):
    geometry = layer_args(config)
    rng = np.random.default_rng(seed)
    x = tied_values(rng, config["x_shape"], F64) if ties else rng.standard_normal(config["x_shape"])
    ours = max_pool_kernel(geometry)
    out = ours.forward(x)
    assert_close("max_pool2d", out, max_pool2d_ref(x, **geometry), F64)
    dout = rng.standard_normal(out.shape)
    assert_close("max_pool2d dx", ours.backward(dout), max_pool2d_backward_ref(dout, x, **geometry), F64)


@given(config=pool_configs(avg=True), dtype=dtypes, seed=seeds)
def test_avg_pool2d_matches_torch(config, dtype, seed):
    geometry = layer_args(config)
    check_against_torch(avg_pool_kernel(geometry), lambda t: TF.avg_pool2d(t, **geometry),
                        config["x_shape"], dtype, seed=seed)


@given(config=pool_configs(max_kernel=3, max_extra=3, avg=True), seed=seeds)
def test_avg_pool2d_matches_reference(config, seed):
    geometry = layer_args(config)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["x_shape"])
    ours = avg_pool_kernel(geometry)
    out = ours.forward(x)
    assert_close("avg_pool2d", out, avg_pool2d_ref(x, **geometry), F64)
    dout = rng.standard_normal(out.shape)
    assert_close("avg_pool2d dx", ours.backward(dout), avg_pool2d_backward_ref(dout, x.shape, **geometry), F64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_pool_forward_only_functions_match_torch_and_reference(dtype, count_include_pad):
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 5)).astype(dtype)
    tx = torch.from_numpy(x)
    out = F.max_pool2d(x, 3, 2, 1)
    assert out.dtype == dtype
    assert_close("max_pool2d", out, TF.max_pool2d(tx, 3, 2, 1), dtype)
    assert_close("max_pool2d", out, max_pool2d_ref(x, 3, 2, 1), dtype)
    out = F.avg_pool2d(x, 3, 2, 1, count_include_pad)
    assert out.dtype == dtype
    assert_close("avg_pool2d", out, TF.avg_pool2d(tx, 3, 2, 1, count_include_pad=count_include_pad), dtype)
    assert_close("avg_pool2d", out, avg_pool2d_ref(x, 3, 2, 1, count_include_pad), dtype)


def test_pool_stride_defaults_to_the_kernel_size():
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 7))
    assert F.max_pool2d(x, 2).shape == F.avg_pool2d(x, 2).shape == (1, 2, 3, 3)
    assert_close("max_pool2d", F.max_pool2d(x, (2, 3)), max_pool2d_ref(x, (2, 3), stride=(2, 3)), F64)
    assert_close("avg_pool2d", F.avg_pool2d(x, (2, 3)), avg_pool2d_ref(x, (2, 3), stride=(2, 3)), F64)


@pytest.mark.parametrize("stride", [1, 2, (1, 2)])
def test_max_pool2d_ties_send_the_gradient_to_the_first_element_like_torch(stride):
    """All-equal input: every window's gradient goes to its top-left element."""
    check_against_torch(max_pool_kernel(dict(kernel_size=2, stride=stride)),
                        lambda t: TF.max_pool2d(t, 2, stride), np.ones((1, 2, 5, 5)), F64, seed=0)
    ours = max_pool_kernel(dict(kernel_size=2, stride=stride))
    out = ours.forward(np.ones((1, 1, 4, 4)))
    dx = ours.backward(np.ones_like(out))
    sh, sw = pair(stride)
    expected = np.zeros((1, 1, 4, 4))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            expected[0, 0, i * sh, j * sw] += 1
    np.testing.assert_array_equal(dx, expected)


def test_max_pool2d_padding_never_wins_over_negative_inputs():
    x = -np.ones((1, 1, 3, 3)) - np.arange(9.0).reshape(1, 1, 3, 3)
    check_against_torch(max_pool_kernel(dict(kernel_size=3, stride=1, padding=1)),
                        lambda t: TF.max_pool2d(t, 3, 1, 1), x, F64, seed=0)
    assert np.all(F.max_pool2d(x, 3, 1, 1) < 0)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_padding_divisor(count_include_pad):
    out = F.avg_pool2d(np.ones((1, 1, 2, 2)), 2, stride=1, padding=1, count_include_pad=count_include_pad)
    expected = [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]] if count_include_pad else np.ones((3, 3))
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-12)


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)),
       dtype=dtypes, seed=seeds)
def test_global_avg_pool2d_matches_torch(shape, dtype, seed):
    ours = Kernel(lambda x: (F.global_avg_pool2d(x), x.shape),
                  lambda dout, x_shape: (F.global_avg_pool2d_backward(dout, x_shape), {}))
    check_against_torch(ours, lambda t: TF.adaptive_avg_pool2d(t, 1), shape, dtype, seed=seed)


# -- activations -----------------------------------------------------------------------------------

ACTIVATIONS = {
    "relu": (lambda: unary_kernel(F.relu, F.relu_backward, False), torch.relu),
    "sigmoid": (lambda: unary_kernel(F.sigmoid, F.sigmoid_backward, True), torch.sigmoid),
    "tanh": (lambda: unary_kernel(F.tanh, F.tanh_backward, True), torch.tanh),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(shape=shapes, dtype=dtypes, seed=seeds, scale=st.sampled_from([1.0, 10.0]))
def test_activation_matches_torch(name, shape, dtype, seed, scale):
    ours, theirs = ACTIVATIONS[name]
    # From y alone, 1 - y*y (or y*(1-y)) is known only to eps / (1 - |y|) relative: past
    # |x| = 3 in float32 or 6 in float64 that exceeds TOL in any library, once every entry
    # saturates. Saturation is tested below, beside entries that set the scale.
    limit = 3.0 if dtype == np.float32 else 6.0
    x = np.clip(np.random.default_rng(seed).standard_normal(shape) * scale, -limit, limit)
    check_against_torch(ours(), theirs, x, dtype, seed=seed)


@given(shape=shapes, dtype=dtypes, seed=seeds, slope=st.sampled_from([0.01, 0.2, 1.5]))
def test_leaky_relu_matches_torch(shape, dtype, seed, slope):
    ours = Kernel(lambda x: (F.leaky_relu(x, slope), x),
                  lambda dout, x: (F.leaky_relu_backward(dout, x, slope), {}))
    check_against_torch(ours, lambda t: TF.leaky_relu(t, slope), shape, dtype, seed=seed)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_and_leaky_relu_gradient_at_zero_follow_torch(dtype):
    """torch: relu'(0) = 0, leaky_relu'(0) = negative_slope."""
    x = np.array([[-1.0, 0.0, 0.0, 2.0]])
    check_against_torch(unary_kernel(F.relu, F.relu_backward, False), torch.relu, x, dtype, seed=0)
    ours = Kernel(lambda x: (F.leaky_relu(x, 0.1), x), lambda dout, x: (F.leaky_relu_backward(dout, x, 0.1), {}))
    check_against_torch(ours, lambda t: TF.leaky_relu(t, 0.1), x, dtype, seed=0)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_saturate_cleanly_at_plus_minus_1000(dtype):
    x = np.array([[-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0]])
    check_against_torch(unary_kernel(F.sigmoid, F.sigmoid_backward, True), torch.sigmoid, x, dtype, seed=0)
    check_against_torch(unary_kernel(F.tanh, F.tanh_backward, True), torch.tanh, x, dtype, seed=0)
    y = F.sigmoid(x.astype(dtype))
    assert y[0, 0] == 0.0 and y[0, -1] == 1.0


@pytest.mark.filterwarnings("error::RuntimeWarning")
@given(shape=shapes, dtype=dtypes, seed=seeds, scale=st.sampled_from([1.0, 1e4]), data=st.data())
def test_softmax_and_log_softmax_match_torch_on_every_axis(shape, dtype, seed, scale, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
    tx = torch.from_numpy(x)
    y = F.softmax(x, axis=axis)
    assert y.dtype == dtype
    assert_close("softmax", y, torch.softmax(tx, axis), dtype)
    assert_close("log_softmax", F.log_softmax(x, axis=axis), torch.log_softmax(tx, axis), dtype)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=10 * np.finfo(dtype).eps * shape[axis])


def softmax_kernel(axis):
    """softmax along axis, its backward fed the output y (as the Softmax layer does)."""
    def forward(x):
        y = F.softmax(x, axis=axis)
        return y, y
    return Kernel(forward, lambda dout, y: (F.softmax_backward(dout, y, axis=axis), {}))


@given(shape=shapes, dtype=dtypes, seed=seeds, scale=st.sampled_from([1.0, 5.0]), data=st.data())
def test_softmax_backward_matches_torch_on_every_axis(shape, dtype, seed, scale, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    check_against_torch(softmax_kernel(axis), lambda t: torch.softmax(t, axis), x, dtype, seed=seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", [((4, 7), 1), ((4, 7), 0), ((2, 5, 3), -1), ((2, 3, 4, 5), 2)])
def test_softmax_backward_on_named_shapes(shape, axis, dtype):
    check_against_torch(softmax_kernel(axis), lambda t: torch.softmax(t, axis), shape, dtype, seed=7)


def test_softmax_default_axis_is_1():
    x = np.random.default_rng(4).standard_normal((3, 4, 2))
    tx = torch.from_numpy(x)
    assert_close("softmax", F.softmax(x), torch.softmax(tx, 1), F64)
    assert_close("log_softmax", F.log_softmax(x), torch.log_softmax(tx, 1), F64)
    y = F.softmax(x)
    dout = np.random.default_rng(5).standard_normal(x.shape)
    tx.requires_grad_(True)
    torch.softmax(tx, 1).backward(torch.from_numpy(dout))
    assert_close("softmax_backward", F.softmax_backward(dout, y), tx.grad, F64)


# -- losses ----------------------------------------------------------------------------------------

CROSS_ENTROPY = Kernel(F.cross_entropy_forward, lambda cache: (F.cross_entropy_backward(cache), {}))
MSE = Kernel(F.mse_forward, lambda cache: (F.mse_backward(cache), {}))


def ce_target(kind, rng, n, k, dtype):
    """Integer labels (N,), probability rows (N, K) or one-hot rows (N, K)."""
    labels = rng.integers(0, k, n)
    if kind == "labels":
        return labels
    if kind == "probabilities":
        return rng.dirichlet(np.ones(k), n).astype(dtype)
    return np.eye(k, dtype=dtype)[labels]


@pytest.mark.filterwarnings("error::RuntimeWarning")
@given(n=st.integers(1, 5), k=st.integers(1, 6), dtype=dtypes, seed=seeds,
       kind=st.sampled_from(["labels", "probabilities", "one-hot"]), scale=st.sampled_from([1.0, 10.0, 1e4]))
def test_cross_entropy_matches_torch(n, k, dtype, seed, kind, scale):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * scale
    # One undecided sample keeps the gradient's scale: where every sample is predicted with
    # p within 1e-4 of 1, p - 1 is below what any library resolves to TOL of itself.
    logits[0] = 0.0
    target = ce_target(kind, rng, n, k, dtype)
    check_against_torch(CROSS_ENTROPY, TF.cross_entropy, logits, dtype, seed=seed, target=target)
    logits = logits.astype(dtype)
    assert_close("cross_entropy", F.cross_entropy(logits, target),
                 TF.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target)), dtype)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_is_finite_for_logits_of_plus_minus_1e4(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]])
    labels = np.array([1, 2, 2])  # the first and last rows are maximally wrong
    check_against_torch(CROSS_ENTROPY, TF.cross_entropy, logits, dtype, seed=0, target=labels)
    loss = F.cross_entropy(logits.astype(dtype), labels)
    assert np.isfinite(loss) and loss > 1e4


@pytest.mark.parametrize("label_dtype", [np.int32, np.uint8, np.int16])
def test_cross_entropy_accepts_any_integer_labels(label_dtype):
    rng = np.random.default_rng(5)
    logits, labels = rng.standard_normal((4, 3)), rng.integers(0, 3, 4)
    # torch wants int64 labels: the same labels, widened, are the reference
    check_against_torch(CROSS_ENTROPY, lambda t, target: TF.cross_entropy(t, target.long()), logits, F64,
                        target=labels.astype(label_dtype))


@pytest.mark.parametrize("pred_dtype, target_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_loss_gradients_keep_the_prediction_dtype(pred_dtype, target_dtype):
    rng = np.random.default_rng(6)
    pred = rng.standard_normal((3, 4)).astype(pred_dtype)
    _, cache = F.mse_forward(pred, rng.standard_normal((3, 4)).astype(target_dtype))
    assert F.mse_backward(cache).dtype == pred_dtype
    _, cache = F.cross_entropy_forward(pred, rng.dirichlet(np.ones(4), 3).astype(target_dtype))
    assert F.cross_entropy_backward(cache).dtype == pred_dtype


@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_mse_matches_torch(shape, dtype, seed):
    target = np.random.default_rng(seed + 1).standard_normal(shape)
    check_against_torch(MSE, TF.mse_loss, shape, dtype, seed=seed, target=target)
    pred, target = np.random.default_rng(seed).standard_normal(shape).astype(dtype), target.astype(dtype)
    assert_close("mse_loss", F.mse_loss(pred, target), TF.mse_loss(torch.from_numpy(pred), torch.from_numpy(target)),
                 dtype)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("batch", [3, 64], ids=["one piece", "pieces"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_of_a_view_with_gaps_is_that_of_its_dense_copy_and_leaves_it_be(batch, training, dtype):
    """A convolution hands on a channel-major view whose rows carry extra columns; batch norm
    computes on a dense copy of it, with the same results to the bit as from that copy, and
    neither the view nor the memory in its gaps is written."""
    rng = np.random.default_rng(8)
    memory = rng.standard_normal((16, batch, 24, 27)).astype(dtype)  # (C, N, H, W + 3)
    before = memory.copy()
    x = memory.transpose(1, 0, 2, 3)[..., :24]
    dense = np.array(x, order="K")
    assert len(span(x)) > x.size  # it has gaps
    weight, bias = rng.standard_normal(16).astype(dtype), rng.standard_normal(16).astype(dtype)
    mean, var = rng.standard_normal(16).astype(dtype), rng.random(16).astype(dtype) + 0.5
    dout = rng.standard_normal(x.shape).astype(dtype)
    got, got_cache, got_running = F.batch_norm_forward(x, weight, bias, mean, var, training)
    want, want_cache, want_running = F.batch_norm_forward(dense, weight, bias, mean, var, training)
    for a, b in zip([got, *got_running, *F.batch_norm_backward(dout, got_cache)],
                    [want, *want_running, *F.batch_norm_backward(dout, want_cache)]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(memory, before)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("layout", ["(N, C)", "(N, C, L)", "NCHW", "channel-major view"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_with_a_fused_relu_is_the_relu_of_the_norm_bit_for_bit(layout, training, dtype):
    """relu=True gives relu(batch_norm(x)) and backward the gradient through both, to the last
    bit, whatever x's layout (a convolution hands on a channel-major view); exact zeros and NaN
    outputs are where a mask taken from the ReLU's output could differ from one taken before it."""
    rng = np.random.default_rng(7)
    shape = {"(N, C)": (6, 5), "(N, C, L)": (6, 5, 7), "NCHW": (6, 5, 4, 3)}.get(layout, (6, 5, 4, 3))
    if layout == "channel-major view":  # (C, N, H, W + 1) memory seen as NCHW, as conv2d's output
        x = np.empty((5, 6, 4, 4), dtype).transpose(1, 0, 2, 3)[..., :3]
    else:
        x = np.empty(shape, dtype)
    x[...] = rng.standard_normal(x.shape)
    c = shape[1]
    weight, bias = rng.standard_normal(c).astype(dtype), np.zeros(c, dtype)
    mean, var = rng.standard_normal(c).astype(dtype), rng.random(c).astype(dtype) + 0.5
    x[:, 1] = mean[1]  # a constant channel: its outputs are exactly 0 in either mode
    x[2, 3] = np.nan
    with np.errstate(invalid="ignore"):
        out, cache, _ = F.batch_norm_forward(x, weight, bias, mean, var, training)
        fused, fused_cache, _ = F.batch_norm_forward(x, weight, bias, mean, var, training, relu=True)
        np.testing.assert_array_equal(fused, F.relu(out))
        dout = rng.standard_normal(x.shape).astype(dtype)
        for got, want in zip(F.batch_norm_backward(dout, fused_cache),
                             F.batch_norm_backward(F.relu_backward(dout, out), cache)):
            np.testing.assert_array_equal(got, want)
