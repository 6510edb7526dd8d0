"""Pooling with the rest of PyTorch's options: ceil_mode (the last, partial window kept when it
starts inside the input or its left padding), dilation (max), divisor_override (average); exact
against PyTorch forward and backward on random configurations, and through ONNX both ways
against onnxruntime."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import numcnn as nc
import reference
from parity import DTYPES, check_against_torch


@st.composite
def pool_configs(draw, dilated: bool):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilated else (1, 1)
    h = draw(st.integers(max(1, d[0] * (k[0] - 1) + 1 - 2 * p[0]), 11))
    w = draw(st.integers(max(1, d[1] * (k[1] - 1) + 1 - 2 * p[1]), 11))
    return dict(kernel_size=k, stride=s, padding=p, ceil_mode=draw(st.booleans())), d, (2, 3, h, w)


@given(config=pool_configs(dilated=True), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_max_pool_with_ceil_mode_and_dilation_matches_torch(config, dtype, seed):
    args, dilation, shape = config
    # With dilation a window can fall wholly in the padding; PyTorch's answer there is -inf.
    assume(torch.isfinite(torch.nn.MaxPool2d(**args, dilation=dilation)(torch.zeros(shape))).all())
    check_against_torch(nc.MaxPool2d(**args, dilation=dilation), torch.nn.MaxPool2d(**args, dilation=dilation),
                        shape, dtype, seed=seed)


@given(config=pool_configs(dilated=False), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16),
       count_include_pad=st.booleans(), divisor=st.one_of(st.none(), st.integers(1, 7)))
def test_avg_pool_with_ceil_mode_and_divisor_override_matches_torch(config, dtype, seed, count_include_pad, divisor):
    args, _, shape = config
    check_against_torch(nc.AvgPool2d(**args, count_include_pad=count_include_pad, divisor_override=divisor),
                        torch.nn.AvgPool2d(**args, count_include_pad=count_include_pad, divisor_override=divisor),
                        shape, dtype, seed=seed)


@pytest.mark.parametrize("size, kernel, stride, padding, floor, ceil", [
    (5, 2, 2, 0, 2, 3),    # a last window of one real row is kept
    (4, 2, 2, 0, 2, 2),    # nothing left over: the same either way
    (6, 3, 2, 1, 3, 4),    # the last window starts at row 5, inside the input
    (5, 2, 2, 1, 3, 3),    # a fourth would start at 6 = size + padding: PyTorch's rule drops it
])
def test_output_sizes_by_hand(size, kernel, stride, padding, floor, ceil):
    x = np.zeros((1, 1, size, size), np.float32)
    for mode, expected in ((False, floor), (True, ceil)):
        out = nc.MaxPool2d(kernel, stride, padding, ceil_mode=mode).forward(x)
        assert out.shape[2:] == (expected, expected)


@pytest.mark.parametrize("make", [
    lambda t, **kw: t.MaxPool2d(5, 3, ceil_mode=True, **kw),
    lambda t, **kw: t.AvgPool2d(5, 3, ceil_mode=True, **kw),
    lambda t, **kw: t.AvgPool2d(5, 3, 1, ceil_mode=True, count_include_pad=False, **kw),
    lambda t, **kw: t.AvgPool2d((4, 3), (3, 4), (2, 1), ceil_mode=True, **kw),
], ids=["max", "avg", "avg no pad count", "avg padded"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_ceil_mode_keeps_a_window_on_an_input_smaller_than_the_kernel(make, dtype):
    # 3 rows under a 5-row kernel: PyTorch's ceil_mode keeps the one window that starts there.
    check_against_torch(make(nc), make(torch.nn), (2, 3, 3, 10), dtype, seed=3)
    with pytest.raises(nc.ShapeError, match="does not fit"):
        nc.MaxPool2d(5, 3).forward(np.zeros((2, 3, 3, 10), dtype))


def test_the_options_survive_save_and_load(tmp_path):
    model = nc.Sequential(nc.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
                          nc.AvgPool2d(2, ceil_mode=True, count_include_pad=False, divisor_override=3))
    x = np.random.default_rng(0).standard_normal((2, 1, 11, 11)).astype(np.float32)
    nc.save(model, tmp_path / "m.npz")
    again = nc.load(tmp_path / "m.npz")
    assert np.array_equal(again.forward(x), model.forward(x))
    assert again[0].dilation == 2 and again[0].ceil_mode and again[1].divisor_override == 3


def test_a_bad_divisor_override_is_a_config_error():
    with pytest.raises(nc.ConfigError, match="divisor_override must be a positive int"):
        nc.AvgPool2d(2, divisor_override=0)


@pytest.mark.parametrize("layer", [
    lambda: nc.MaxPool2d(3, 2, 1, ceil_mode=True),
    lambda: nc.MaxPool2d(2, 2, 0, dilation=2, ceil_mode=True),
    lambda: nc.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda: nc.AvgPool2d(2, 2, 0, ceil_mode=True),
    # On 9 x 9 PyTorch's rule drops the last window (it would start in the padding); ONNX's keeps it.
    lambda: nc.MaxPool2d(2, 2, 1, ceil_mode=True),
    lambda: nc.AvgPool2d(2, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda: nc.MaxPool2d((2, 3), (3, 2), (1, 1), ceil_mode=True),
    # "same" as explicit pads: onnxruntime's SAME_UPPER ignores dilation and fails at a stride above the kernel.
    lambda: nc.MaxPool2d(2, 1, "same", dilation=2),
    lambda: nc.MaxPool2d(3, 2, "same", dilation=2, ceil_mode=True),
    lambda: nc.AvgPool2d(2, 3, "same"),
    lambda: nc.MaxPool2d(1, 3, "same"),
])
def test_onnx_both_ways_matches_onnxruntime(layer, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the onnx extra")
    model = nc.Sequential(layer(), input_shape=(2, 9, 9))
    path = nc.interop.export_onnx(model, tmp_path / "pool.onnx")
    x = np.random.default_rng(1).standard_normal((3, 2, 9, 9)).astype(np.float32)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"input": x})[0]
    np.testing.assert_allclose(model.forward(x), theirs, rtol=1e-6, atol=1e-6)
    back = nc.interop.import_onnx(path)
    np.testing.assert_array_equal(back.forward(x), model.forward(x))


def test_an_average_counting_padding_past_onnxs_ceil_rule_is_refused_by_name(tmp_path):
    pytest.importorskip("onnx", reason="needs the onnx extra")
    model = nc.Sequential(nc.Conv2d(2, 2, 1), nc.AvgPool2d(2, 2, 1, ceil_mode=True), input_shape=(2, 9, 9))
    with pytest.raises(nc.ConfigError, match=r"layer '1'.*5x5 windows on a 9x9 input where ONNX's AveragePool has 6x6"):
        nc.interop.export_onnx(model, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_divisor_override_is_refused_by_onnx_export_by_name(tmp_path):
    pytest.importorskip("onnx", reason="needs the onnx extra")
    model = nc.Sequential(nc.AvgPool2d(2, divisor_override=3), input_shape=(1, 4, 4))
    with pytest.raises(nc.ConfigError, match="divisor_override=3 has no ONNX"):
        nc.interop.export_onnx(model, tmp_path / "x.onnx")


def test_serve_details_of_the_new_pooling_options_give_the_layers_own_output():
    """numcnn serve's window for a dilated, ceil-mode max pool and a ceil-mode average pool with
    a divisor override: its winner or sum / divisor is the layer's output at every pixel."""
    pytest.importorskip("starlette", reason="numcnn serve needs the serve extra")
    from numcnn.serve.explain import Explainer

    nc.manual_seed(0)
    model = nc.Sequential(nc.Conv2d(1, 2, 3, padding=1), nc.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
                          nc.AvgPool2d(2, ceil_mode=True, divisor_override=3),
                          nc.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=True),
                          nc.Flatten(), nc.Linear(8, 3), input_shape=(1, 13, 13))
    explainer = Explainer(model, {"classes": ["a", "b", "c"]})
    x = np.random.default_rng(3).random((1, 13, 13)).astype(np.float32)
    for index in (1, 2, 3):
        channels, height, width = explainer.output_shapes[index]
        for y in range(height):
            for col in range(width):
                detail = explainer.detail(x, index, 1, y, col)
                assert detail["result"] == pytest.approx(detail["value"], rel=1e-5, abs=1e-6), (index, y, col)


# -- adaptive and global max pooling -------------------------------------------------------------
@given(h=st.integers(1, 9), w=st.integers(1, 9), oh=st.one_of(st.none(), st.integers(1, 11)),
       ow=st.integers(1, 11), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16), ties=st.booleans())
def test_adaptive_pools_match_torch(h, w, oh, ow, dtype, seed, ties):
    """Any output size, larger than the input included; None keeps a side; ties (rounded values)
    send the max pool's gradient to the first maximum, as PyTorch does."""
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    x = np.round(x) if ties else x
    check_against_torch(nc.AdaptiveAvgPool2d((oh, ow)), torch.nn.AdaptiveAvgPool2d((oh, ow)), x, dtype,
                        seed=seed, randomize=False)
    check_against_torch(nc.AdaptiveMaxPool2d((oh, ow)), torch.nn.AdaptiveMaxPool2d((oh, ow)), x, dtype,
                        seed=seed, randomize=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_max_pool_is_torchs_amax_over_the_image(dtype):
    check_against_torch(nc.GlobalMaxPool2d(), lambda t: torch.amax(t, dim=(2, 3), keepdim=True), (2, 4, 5, 3),
                        dtype, seed=1)


def test_adaptive_windows_by_hand():
    # 5 inputs into 3 outputs: [0, 2), [1, 4), [3, 5), PyTorch's floor/ceil rule.
    from numcnn.functional.adaptive import adaptive_bounds

    start, end = adaptive_bounds(5, 3)
    assert start.tolist() == [0, 1, 3] and end.tolist() == [2, 4, 5]
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    assert nc.AdaptiveAvgPool2d((1, 3)).forward(x).ravel().tolist() == [0.5, 2.0, 3.5]
    assert nc.AdaptiveMaxPool2d((1, 3)).forward(x).ravel().tolist() == [1.0, 3.0, 4.0]


def test_global_pools_go_through_onnx_both_ways(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the onnx extra")
    model = nc.Sequential(nc.Conv2d(2, 3, 3), nc.GlobalMaxPool2d(), nc.Flatten(), input_shape=(2, 6, 6))
    adaptive = nc.Sequential(nc.Conv2d(2, 3, 3), nc.AdaptiveAvgPool2d(1), nc.Flatten(), input_shape=(2, 6, 6))
    x = np.random.default_rng(2).standard_normal((4, 2, 6, 6)).astype(np.float32)
    for net in (model, adaptive):
        path = nc.interop.export_onnx(net, tmp_path / "g.onnx")
        theirs = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        np.testing.assert_allclose(net.forward(x), theirs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(nc.interop.import_onnx(path).forward(x), theirs, rtol=1e-5, atol=1e-6)
    with pytest.raises(nc.ConfigError, match="ONNX has adaptive pooling to 1 x 1 only"):
        nc.interop.export_onnx(nc.Sequential(nc.AdaptiveMaxPool2d(2), input_shape=(1, 4, 4)), tmp_path / "a.onnx")


# -- transposed convolution ------------------------------------------------------------------------
@st.composite
def transposed_configs(draw):
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    op = tuple(draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    shape = (2, c_in, draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    out = [(shape[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1 for a in range(2)]
    assume(min(out) >= 1)
    return dict(in_channels=c_in, out_channels=c_out, kernel_size=k, stride=s, padding=p, output_padding=op,
                groups=groups, dilation=d, bias=draw(st.booleans())), shape


@given(config=transposed_configs(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_conv_transpose_matches_torch(config, dtype, seed):
    args, shape = config
    check_against_torch(nc.ConvTranspose2d(**args, dtype=dtype), torch.nn.ConvTranspose2d(**args), shape, dtype,
                        seed=seed)


def test_conv_transpose_is_the_adjoint_of_the_convolution():
    """<conv(y), x> == <conv_transpose(x), y>: the same weight, stride, padding and dilation."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((4, 3, 3, 2))          # conv: 3 -> 4 channels; transposed: 4 -> 3
    y = rng.standard_normal((2, 3, 9, 8))
    conv = nc.functional.conv2d(y, w, None, 2, 1, (1, 2))
    x = rng.standard_normal(conv.shape)
    back = nc.functional.conv_transpose2d(x, w, None, 2, 1, output_padding=(0, 1), dilation=(1, 2))
    assert back.shape == y.shape
    assert np.isclose(np.vdot(conv, x), np.vdot(y, back))


def test_conv_transpose_checks_its_output_padding():
    with pytest.raises(nc.ConfigError, match="output_padding must be smaller than the stride or the dilation"):
        nc.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2).forward(np.zeros((1, 2, 4, 4), np.float32))


def test_conv_transpose_goes_through_onnx_both_ways(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the onnx extra")
    nc.manual_seed(0)
    model = nc.Sequential(nc.Conv2d(2, 4, 3, stride=2, padding=1), nc.ReLU(),
                          nc.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2),
                          input_shape=(2, 8, 8))
    x = np.random.default_rng(5).standard_normal((3, 2, 8, 8)).astype(np.float32)
    path = nc.interop.export_onnx(model, tmp_path / "ae.onnx")
    theirs = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert theirs.shape == (3, 2, 8, 8)
    np.testing.assert_allclose(model.forward(x), theirs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(nc.interop.import_onnx(path).forward(x), theirs, rtol=1e-5, atol=1e-5)


# -- indices and unpooling -------------------------------------------------------------------------
@given(config=pool_configs(dilated=True), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_return_indices_and_max_unpool_match_torch(config, dtype, seed):
    args, dilation, shape = config
    pool = torch.nn.MaxPool2d(**args, dilation=dilation, return_indices=True)
    assume(torch.isfinite(pool(torch.zeros(shape))[0]).all())
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    out, indices = nc.MaxPool2d(**args, dilation=dilation, return_indices=True).forward(x)
    t_out, t_indices = pool(torch.from_numpy(x))
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(indices, t_indices.numpy())
    # Unpooling back to the input's size, forward and backward, against torch's.
    unpool = nc.MaxUnpool2d(args["kernel_size"], args["stride"], args["padding"])
    y = unpool.forward(out, indices, output_size=shape)
    tx = t_out.clone().requires_grad_()
    try:  # torch takes only output sizes within a stride of its default (no dilation, no ceil_mode)
        ty = torch.nn.functional.max_unpool2d(tx, t_indices, args["kernel_size"], args["stride"], args["padding"],
                                              output_size=shape[2:])
    except ValueError:
        assume(False)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    dout = np.random.default_rng(seed + 1).standard_normal(shape).astype(dtype)
    ty.backward(torch.from_numpy(dout))
    np.testing.assert_array_equal(unpool.backward(dout), tx.grad.numpy())


def test_max_unpool_default_size_and_bad_indices():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    out, indices = nc.MaxPool2d(2, return_indices=True).forward(x)
    assert indices.ravel().tolist() == [5, 7, 13, 15]
    back = nc.MaxUnpool2d(2).forward(out, indices)
    assert back.shape == (1, 1, 4, 4) and back.ravel().tolist() == [0, 0, 0, 0, 0, 5, 0, 7, 0, 0, 0, 0, 0, 13, 0, 15]
    with pytest.raises(nc.ShapeError, match="outside the 2x2 output"):
        nc.MaxUnpool2d(2).forward(out, indices, output_size=(2, 2))


# -- padding on each side, and 'same' --------------------------------------------------------------
@st.composite
def sided(draw, reach_h: int, reach_w: int):
    return tuple(draw(st.integers(0, r)) for r in (reach_h, reach_h, reach_w, reach_w))


@given(data=st.data(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_conv2d_with_each_sides_padding_is_padding_then_convolving(data, dtype, seed):
    """PyTorch has no asymmetric conv padding: the reference pads first (F.pad), then convolves."""
    k = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    pads = data.draw(sided(3, 3))
    shape = (2, 3, data.draw(st.integers(k[0], 8)), data.draw(st.integers(k[1], 8)))
    ours = nc.Conv2d(3, 4, k, stride=stride, padding=pads, dtype=dtype)
    top, bottom, left, right = pads

    def theirs(tx, weight, bias):
        return torch.nn.functional.conv2d(torch.nn.functional.pad(tx, (left, right, top, bottom)), weight, bias, stride)
    check_against_torch(ours, theirs, shape, dtype, seed=seed)


@given(data=st.data(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_pooling_with_each_sides_padding_is_padding_then_pooling(data, dtype, seed):
    k = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    pads = data.draw(sided(k[0] - 1, k[1] - 1))
    shape = (2, 3, data.draw(st.integers(k[0], 8)), data.draw(st.integers(k[1], 8)))
    top, bottom, left, right = pads
    fn = torch.nn.functional

    def max_theirs(tx):
        return fn.max_pool2d(fn.pad(tx, (left, right, top, bottom), value=-float("inf")), k, stride)

    def avg_theirs(tx):
        return fn.avg_pool2d(fn.pad(tx, (left, right, top, bottom)), k, stride)
    check_against_torch(nc.MaxPool2d(k, stride, pads), max_theirs, shape, dtype, seed=seed)
    check_against_torch(nc.AvgPool2d(k, stride, pads), avg_theirs, shape, dtype, seed=seed)


@pytest.mark.parametrize("op, build", [
    ("MaxPool", lambda: nc.MaxPool2d(3, 2, "same")),
    ("AveragePool", lambda: nc.AvgPool2d(3, 2, "same", count_include_pad=False)),
    ("AveragePool", lambda: nc.AvgPool2d((2, 3), 1, (0, 1, 2, 0), count_include_pad=False)),
    ("MaxPool", lambda: nc.MaxPool2d(3, 2, (2, 0, 1, 2))),
])
def test_same_and_sided_pooling_match_onnxruntime_both_ways(op, build, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the onnx extra")
    model = nc.Sequential(build(), input_shape=(2, 9, 8))
    path = nc.interop.export_onnx(model, tmp_path / "p.onnx")
    x = np.random.default_rng(6).standard_normal((3, 2, 9, 8)).astype(np.float32)
    theirs = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(model.forward(x), theirs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(nc.interop.import_onnx(path).forward(x), theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_a_strided_same_conv_from_keras_imports_exactly(auto_pad, tmp_path):
    """What Keras and TensorFlow export for padding='same' with stride 2: auto_pad with pads that
    differ by one row and column; numcnn imports it with padding on each side."""
    helper = pytest.importorskip("onnx.helper", reason="needs the onnx extra")
    rng = np.random.default_rng(7)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    node = helper.make_node("Conv", ["input", "w"], ["output"], auto_pad=auto_pad, strides=[2, 2], kernel_shape=[3, 3])
    ours, theirs = one_node_model(tmp_path, node, [1, 2, 8, 8], w, x)
    assert theirs.shape == (1, 4, 4, 4)
    np.testing.assert_allclose(ours.forward(x), theirs, rtol=1e-5, atol=1e-5)


def test_serve_details_of_a_transposed_conv_and_the_adaptive_pools_give_their_outputs():
    """Every number numcnn serve shows for these layers is the layer's own output at that pixel:
    the transposed convolution's gathered products plus the bias, the adaptive window's winner
    or mean."""
    pytest.importorskip("starlette", reason="numcnn serve needs the serve extra")
    from numcnn.serve.explain import Explainer

    nc.manual_seed(1)
    model = nc.Sequential(nc.Conv2d(1, 4, 3, stride=2, padding=1),
                          nc.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1),
                          nc.AdaptiveMaxPool2d((3, 5)), nc.AdaptiveAvgPool2d(2), nc.GlobalMaxPool2d(),
                          nc.Flatten(), nc.Linear(2, 3), input_shape=(1, 10, 10))
    explainer = Explainer(model, {"classes": ["a", "b", "c"]})
    x = np.random.default_rng(8).random((1, 10, 10)).astype(np.float32)
    for index in (1, 2, 3, 4):
        channels, height, width = explainer.output_shapes[index]
        for y in range(height):
            for col in range(width):
                detail = explainer.detail(x, index, channels - 1, y, col)
                shown = detail["sum"] if detail["kind"] == "conv_transpose" else detail["result"]
                assert shown == pytest.approx(detail["value"], rel=1e-5, abs=1e-6), (index, y, col)


# -- against the naive loops of tests/reference.py ---------------------------------------------------
@given(config=pool_configs(dilated=True), seed=st.integers(0, 2**16))
def test_dilated_ceil_mode_max_pool_matches_the_loops(config, seed):
    args, dilation, shape = config
    x = np.random.default_rng(seed).standard_normal(shape)
    expected = reference.max_pool2d_full_ref(x, args["kernel_size"], args["stride"], args["padding"], dilation,
                                             args["ceil_mode"])
    assume(np.isfinite(expected).all())
    np.testing.assert_array_equal(nc.MaxPool2d(**args, dilation=dilation).forward(x), expected)


@given(config=pool_configs(dilated=False), seed=st.integers(0, 2**16), count_include_pad=st.booleans(),
       divisor=st.one_of(st.none(), st.integers(1, 7)))
def test_ceil_mode_avg_pool_matches_the_loops(config, seed, count_include_pad, divisor):
    args, _, shape = config
    x = np.random.default_rng(seed).standard_normal(shape)
    ours = nc.AvgPool2d(**args, count_include_pad=count_include_pad, divisor_override=divisor).forward(x)
    np.testing.assert_allclose(ours, reference.avg_pool2d_full_ref(
        x, args["kernel_size"], args["stride"], args["padding"], args["ceil_mode"], count_include_pad, divisor),
        rtol=1e-12, atol=1e-12)


@given(h=st.integers(1, 8), w=st.integers(1, 8), oh=st.integers(1, 9), ow=st.integers(1, 9), seed=st.integers(0, 99))
def test_adaptive_pools_match_the_loops(h, w, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((2, 2, h, w))
    np.testing.assert_allclose(nc.AdaptiveAvgPool2d((oh, ow)).forward(x), reference.adaptive_ref(x, (oh, ow), np.mean),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(nc.AdaptiveMaxPool2d((oh, ow)).forward(x), reference.adaptive_ref(x, (oh, ow), np.max))


@given(config=transposed_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose_matches_the_loops(config, seed):
    args, shape = config
    layer = nc.ConvTranspose2d(**args, dtype=np.float64)
    rng = np.random.default_rng(seed)
    layer.params["weight"] = rng.standard_normal(layer.params["weight"].shape)
    if "bias" in layer.params:
        layer.params["bias"] = rng.standard_normal(layer.params["bias"].shape)
    x = rng.standard_normal(shape)
    expected = reference.conv_transpose2d_ref(x, layer.params["weight"], layer.params.get("bias"), args["stride"],
                                              args["padding"], args["output_padding"], args["groups"], args["dilation"])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-10, atol=1e-10)


def test_conv_transpose_with_output_shape_imports_as_its_output_padding(tmp_path):
    helper = pytest.importorskip("onnx.helper", reason="needs the onnx extra")
    rng = np.random.default_rng(9)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["input", "w"], ["output"], strides=[2, 2], pads=[1, 1, 1, 1],
                            output_shape=[8, 7])
    ours, theirs = one_node_model(tmp_path, node, [1, 2, 4, 4], w, x)
    assert theirs.shape == (1, 3, 8, 7) and ours[0].output_padding in ((1, 0), [1, 0])
    np.testing.assert_allclose(ours.forward(x), theirs, rtol=1e-5, atol=1e-5)


def one_node_model(tmp_path, node, input_shape, weight: np.ndarray, x: np.ndarray):
    """A one-node ONNX file taking "input" and the initializer "w"; returns (numcnn's import of
    it, onnxruntime's output for x)."""
    onnx = pytest.importorskip("onnx", reason="needs the onnx extra")
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the onnx extra")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "one.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "one.onnx"), providers=["CPUExecutionProvider"])
    return nc.interop.import_onnx(tmp_path / "one.onnx"), session.run(None, {"input": x})[0]
