"""Every layer against its PyTorch module through check_against_torch, in float64 and float32:
drawn configurations first, then the edge cases by name."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import numcnn as nc
from parity import (DEVICES, DTYPES, check_against_torch, conv_configs, dtypes, layer_args, pool_configs, seeds,
                    tied_values)

F64, F32 = np.float64, np.float32
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)
images = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 6))


# -- convolution -----------------------------------------------------------------------------------

@given(config=conv_configs(), dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_conv2d(config, dtype, seed, device):
    args = layer_args(config)
    check_against_torch(nc.Conv2d(**args, dtype=dtype), torch.nn.Conv2d(**args), config["x_shape"], dtype, seed=seed, device=device)


CONV_EDGE_CASES = {
    "1x1": ((2, 3, 5, 4), dict(in_channels=3, out_channels=4, kernel_size=1)),
    "kernel equals input": ((2, 2, 4, 3), dict(in_channels=2, out_channels=3, kernel_size=(4, 3))),
    "stride larger than kernel": ((1, 2, 9, 8), dict(in_channels=2, out_channels=2, kernel_size=2, stride=3)),
    "depthwise": ((2, 4, 6, 6), dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, groups=4)),
    "depthwise multiplier 2": ((2, 3, 5, 5), dict(in_channels=3, out_channels=6, kernel_size=3, groups=3)),
    "batch of 1, odd sizes": ((1, 3, 7, 5), dict(in_channels=3, out_channels=5, kernel_size=3, stride=2,
                                                 padding=1)),
    "asymmetric pairs": ((2, 2, 9, 7), dict(in_channels=2, out_channels=3, kernel_size=(3, 2), stride=(2, 1),
                                            padding=(1, 0), dilation=(1, 2))),
    "same, even kernel": ((2, 2, 5, 6), dict(in_channels=2, out_channels=2, kernel_size=(2, 4), padding="same")),
    "same, dilated": ((1, 2, 6, 5), dict(in_channels=2, out_channels=3, kernel_size=3, padding="same",
                                         dilation=2)),
    "valid, no bias": ((2, 2, 5, 5), dict(in_channels=2, out_channels=3, kernel_size=3, padding="valid",
                                          bias=False)),
    "grouped, 1x1 output": ((3, 6, 3, 3), dict(in_channels=6, out_channels=4, kernel_size=3, groups=2)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CONV_EDGE_CASES))
@pytest.mark.parametrize("device", DEVICES)
def test_conv2d_edge_cases(case, dtype, device):
    x_shape, args = CONV_EDGE_CASES[case]
    check_against_torch(nc.Conv2d(**args, dtype=dtype), torch.nn.Conv2d(**args), x_shape, dtype, seed=0, device=device)


# -- pooling ---------------------------------------------------------------------------------------

@given(config=pool_configs(), dtype=dtypes, seed=seeds, ties=st.booleans())
@pytest.mark.parametrize("device", DEVICES)
def test_max_pool2d(config, dtype, seed, ties, device):
    x = tied_values(np.random.default_rng(seed), config["x_shape"], dtype) if ties else config["x_shape"]
    args = layer_args(config)
    check_against_torch(nc.MaxPool2d(**args), torch.nn.MaxPool2d(**args), x, dtype, seed=seed, device=device)


@given(config=pool_configs(avg=True), dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_avg_pool2d(config, dtype, seed, device):
    args = layer_args(config)
    check_against_torch(nc.AvgPool2d(**args), torch.nn.AvgPool2d(**args), config["x_shape"], dtype, seed=seed, device=device)


POOL_EDGE_CASES = {
    "kernel equals input": ((2, 2, 4, 3), dict(kernel_size=(4, 3))),
    "1x1": ((1, 2, 3, 3), dict(kernel_size=1)),
    "stride larger than kernel": ((1, 2, 9, 8), dict(kernel_size=2, stride=3)),
    "overlapping, padded, odd": ((1, 3, 7, 5), dict(kernel_size=3, stride=2, padding=1)),
    "asymmetric pairs": ((2, 1, 8, 7), dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1))),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(POOL_EDGE_CASES))
@pytest.mark.parametrize("device", DEVICES)
def test_pool_edge_cases(case, dtype, device):
    x_shape, args = POOL_EDGE_CASES[case]
    check_against_torch(nc.MaxPool2d(**args), torch.nn.MaxPool2d(**args), x_shape, dtype, seed=0, device=device)
    for count_include_pad in (True, False):
        check_against_torch(nc.AvgPool2d(**args, count_include_pad=count_include_pad),
                            torch.nn.AvgPool2d(**args, count_include_pad=count_include_pad), x_shape, dtype, seed=0, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_max_pool2d_all_equal_input_sends_each_gradient_to_the_window_start_like_torch(dtype, device):
    check_against_torch(nc.MaxPool2d(3, stride=1, padding=1), torch.nn.MaxPool2d(3, stride=1, padding=1),
                        np.full((2, 2, 5, 4), 0.5), dtype, seed=0, device=device)
    check_against_torch(nc.MaxPool2d(2), torch.nn.MaxPool2d(2), np.zeros((1, 1, 4, 4)), dtype, seed=0, device=device)


@given(shape=images, dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_global_avg_pool2d(shape, dtype, seed, device):
    check_against_torch(nc.GlobalAvgPool2d(), torch.nn.AdaptiveAvgPool2d(1), shape, dtype, seed=seed, device=device)


# -- linear and flatten ----------------------------------------------------------------------------

@given(n=st.integers(1, 4), in_features=st.integers(1, 8), out_features=st.integers(1, 6), bias=st.booleans(),
       dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_linear_on_2d_input(n, in_features, out_features, bias, dtype, seed, device):
    check_against_torch(nc.Linear(in_features, out_features, bias=bias, dtype=dtype),
                        torch.nn.Linear(in_features, out_features, bias=bias), (n, in_features), dtype, seed=seed, device=device)


@given(shape=images, out_features=st.integers(1, 5), bias=st.booleans(), dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_linear_flattens_4d_input(shape, out_features, bias, dtype, seed, device):
    in_features = int(np.prod(shape[1:]))
    check_against_torch(nc.Linear(in_features, out_features, bias=bias, dtype=dtype),
                        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_features, out_features, bias=bias)),
                        shape, dtype, seed=seed, device=device)


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=5).map(tuple), dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_flatten(shape, dtype, seed, device):
    check_against_torch(nc.Flatten(), torch.nn.Flatten(), shape, dtype, seed=seed, device=device)


# -- activations -----------------------------------------------------------------------------------

@pytest.mark.parametrize("ours, theirs", [(nc.ReLU, torch.nn.ReLU), (nc.Sigmoid, torch.nn.Sigmoid),
                                          (nc.Tanh, torch.nn.Tanh)])
@given(shape=shapes, dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_activation(ours, theirs, shape, dtype, seed, device):
    # standard normals: in float32 the gradient from y stays accurate for |x| < 3 (see test_functional)
    x = np.clip(np.random.default_rng(seed).standard_normal(shape), -3.0, 3.0)
    check_against_torch(ours(), theirs(), x, dtype, seed=seed, device=device)


@given(shape=shapes, slope=st.sampled_from([0.01, 0.2, 2.0]), dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_leaky_relu(shape, slope, dtype, seed, device):
    check_against_torch(nc.LeakyReLU(slope), torch.nn.LeakyReLU(slope), shape, dtype, seed=seed, device=device)


@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4).map(tuple), scale=st.sampled_from([1.0, 5.0]),
       dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_softmax(shape, scale, dtype, seed, device):
    """Over axis 1 (the classes of (N, K), the channels of (N, C, H, W)), like torch.nn.Softmax(dim=1)."""
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    check_against_torch(nc.Softmax(), torch.nn.Softmax(dim=1), x, dtype, seed=seed, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 10), (2, 4, 3), (2, 3, 4, 5)])
@pytest.mark.parametrize("device", DEVICES)
def test_softmax_named_shapes(shape, dtype, device):
    check_against_torch(nc.Softmax(), torch.nn.Softmax(dim=1), shape, dtype, seed=0, device=device)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_softmax_large_and_equal_logits(dtype, device):
    x = np.array([[-1000.0, 0.0, 1000.0, 999.0], [5.0, 5.0, 5.0, 5.0]])  # exp overflows unless shifted
    check_against_torch(nc.Softmax(), torch.nn.Softmax(dim=1), x, dtype, seed=0, device=device)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ours, theirs", [(nc.ReLU, torch.nn.ReLU), (nc.LeakyReLU, torch.nn.LeakyReLU),
                                          (nc.Sigmoid, torch.nn.Sigmoid), (nc.Tanh, torch.nn.Tanh)])
@pytest.mark.parametrize("device", DEVICES)
def test_activation_at_extremes_and_zero(ours, theirs, dtype, device):
    x = np.array([[-1000.0, -50.0, -1.0, 0.0, 0.0, 1.0, 50.0, 1000.0]])
    check_against_torch(ours(), theirs(), x, dtype, seed=0, device=device)


# -- losses ----------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("error::RuntimeWarning")
@given(n=st.integers(1, 5), k=st.integers(1, 6), kind=st.sampled_from(["labels", "probabilities", "one-hot"]),
       scale=st.sampled_from([1.0, 1e4]), dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_softmax_cross_entropy(n, k, kind, scale, dtype, seed, device):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    target = {"labels": labels, "one-hot": np.eye(k)[labels], "probabilities": rng.dirichlet(np.ones(k), n)}[kind]
    logits = rng.standard_normal((n, k)) * scale
    logits[0] = 0.0  # an undecided sample keeps the gradient's scale (see test_functional)
    check_against_torch(nc.SoftmaxCrossEntropy(), torch.nn.CrossEntropyLoss(), logits, dtype, seed=seed,
                        target=target, device=device)


@given(shape=shapes, dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_mse_loss(shape, dtype, seed, device):
    target = np.random.default_rng(seed + 1).standard_normal(shape)
    check_against_torch(nc.MSELoss(), torch.nn.MSELoss(), shape, dtype, seed=seed, target=target, device=device)


# -- batch norm ------------------------------------------------------------------------------------

# In train mode each channel needs several values: with two, x_hat = +-1 and dx is pure
# cancellation (its true value is ~eps/var), which float32 cannot resolve in either library.
def _enough_values_per_channel(shape) -> bool:
    return int(np.prod(shape)) // shape[1] >= 4


@st.composite
def batchnorm_cases(draw):
    cls, torch_cls, rank = draw(st.sampled_from([(nc.BatchNorm1d, torch.nn.BatchNorm1d, 2),
                                                 (nc.BatchNorm1d, torch.nn.BatchNorm1d, 3),
                                                 (nc.BatchNorm2d, torch.nn.BatchNorm2d, 4)]))
    training = draw(st.booleans())
    shape = draw(st.tuples(*[st.integers(1, 4)] * rank).filter(
        lambda shape: not training or _enough_values_per_channel(shape)))
    kwargs = dict(eps=draw(st.sampled_from([1e-5, 1e-3])), momentum=draw(st.sampled_from([0.1, 0.5, 1.0])))
    return cls, torch_cls, shape, kwargs, training


@given(case=batchnorm_cases(), dtype=dtypes, seed=seeds)
@pytest.mark.parametrize("device", DEVICES)
def test_batchnorm(case, dtype, seed, device):
    """Train mode: batch statistics, running stats updated (unbiased variance); eval: running stats."""
    cls, torch_cls, shape, kwargs, training = case
    ours = cls(shape[1], **kwargs, dtype=dtype).train(training)
    assert ours.training is training
    check_against_torch(ours, torch_cls(shape[1], **kwargs), shape, dtype, seed=seed, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_batchnorm2d_each_of_several_train_steps_then_eval(dtype, device):
    ours, theirs = nc.BatchNorm2d(3, dtype=dtype), torch.nn.BatchNorm2d(3)
    for step in range(3):
        check_against_torch(ours, theirs, (4, 3, 3, 2), dtype, seed=step, randomize=step == 0, device=device)
    assert int(ours.buffers["num_batches_tracked"]) == int(theirs.num_batches_tracked)
    ours.eval()
    check_against_torch(ours, theirs, (2, 3, 3, 2), dtype, seed=9, randomize=False, device=device)


def test_batchnorm_defaults_match_torch():
    ours = nc.BatchNorm2d(3)
    assert ours.training
    np.testing.assert_array_equal(ours.params["weight"], np.ones(3))
    np.testing.assert_array_equal(ours.params["bias"], np.zeros(3))
    np.testing.assert_array_equal(ours.buffers["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(ours.buffers["running_var"], np.ones(3))
    assert int(ours.buffers["num_batches_tracked"]) == 0
    assert ours.params["weight"].dtype == np.float32


# -- dropout ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_is_the_identity_in_eval_mode(dtype):
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(dtype)
    layer = nc.Dropout(0.5, seed=0).eval()
    assert layer.training is False
    out = layer.forward(x)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, x)
    dout = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(dout), dout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_train_mask_scaling_and_gradient(p, dtype):
    x = (np.random.default_rng(0).uniform(1.0, 2.0, (40, 50, 5))).astype(dtype)  # never zero
    layer = nc.Dropout(p, seed=123)
    assert layer.training
    out = layer.forward(x)
    assert out.dtype == dtype and out.shape == x.shape
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=10 * np.finfo(dtype).eps)
    assert abs(kept.mean() - (1 - p)) < 0.02, f"kept {kept.mean():.3f} of the units, expected {1 - p}"

    dout = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    dx = layer.backward(dout)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx == 0, ~kept | (dout == 0))  # the same mask
    np.testing.assert_allclose(dx[kept], dout[kept] / (1 - p), rtol=10 * np.finfo(dtype).eps)

    again = nc.Dropout(p, seed=123).forward(x)
    np.testing.assert_array_equal(again, out)  # the mask is a function of the seed
    other = nc.Dropout(p, seed=124).forward(x)
    assert np.any((other != 0) != kept)
    assert np.any((layer.forward(x) != 0) != kept)  # each forward draws a fresh mask


@pytest.mark.parametrize("p, expected", [(0.0, "identity"), (1.0, "zeros")])
def test_dropout_extreme_probabilities_like_torch(p, expected):
    x = np.random.default_rng(0).standard_normal((4, 5))
    out = nc.Dropout(p, seed=0).forward(x)
    np.testing.assert_array_equal(out, x if expected == "identity" else np.zeros_like(x))
    np.testing.assert_array_equal(out, torch.nn.functional.dropout(torch.from_numpy(x), p, training=True).numpy())


# -- dtypes and modes ------------------------------------------------------------------------------

DTYPE_CASES = [
    (lambda dtype: nc.Conv2d(2, 3, 3, padding=1, dtype=dtype), (2, 2, 5, 5)),
    (lambda dtype: nc.Linear(8, 3, dtype=dtype), (2, 8)),
    (lambda dtype: nc.Linear(8, 3, dtype=dtype), (2, 2, 2, 2)),
    (lambda dtype: nc.BatchNorm1d(3, dtype=dtype), (4, 3)),
    (lambda dtype: nc.BatchNorm2d(3, dtype=dtype), (4, 3, 2, 2)),
]


@pytest.mark.parametrize("param_dtype, input_dtype", [(F32, F64), (F64, F32), (F32, F32), (F64, F64)])
@pytest.mark.parametrize("case", range(len(DTYPE_CASES)))
def test_params_take_the_constructor_dtype_and_outputs_the_input_dtype(case, param_dtype, input_dtype):
    make, x_shape = DTYPE_CASES[case]
    layer = make(param_dtype)
    assert all(p.dtype == param_dtype for p in layer.params.values())
    x = np.random.default_rng(0).standard_normal(x_shape).astype(input_dtype)
    out = layer.forward(x)
    assert out.dtype == input_dtype
    dx = layer.backward(np.ones_like(out))
    assert dx.dtype == input_dtype and dx.shape == x.shape
    assert set(layer.grads) == set(layer.params)
    assert all(layer.grads[k].shape == layer.params[k].shape for k in layer.params)


@pytest.mark.parametrize("layer", [nc.Conv2d(1, 1, 1), nc.MaxPool2d(2), nc.AvgPool2d(2), nc.GlobalAvgPool2d(),
                                   nc.Linear(2, 2), nc.Flatten(), nc.ReLU(), nc.LeakyReLU(), nc.Sigmoid(),
                                   nc.Tanh(), nc.Softmax(), nc.Dropout(), nc.BatchNorm1d(2), nc.BatchNorm2d(2)],
                         ids=lambda layer: type(layer).__name__)
def test_every_layer_has_the_protocol_and_switches_modes(layer):
    assert isinstance(layer.params, dict) and isinstance(layer.grads, dict) and isinstance(layer.buffers, dict)
    assert layer.training is True
    layer.eval()
    assert layer.training is False
    layer.train()
    assert layer.training is True


ALL_LAYERS = {
    "Conv2d": (lambda: nc.Conv2d(3, 4, 3, padding=1, dtype=F64), (2, 3, 5, 6)),
    "Conv2d strided": (lambda: nc.Conv2d(3, 4, 2, stride=2, dtype=F64), (2, 3, 6, 6)),
    "Conv2d 1x1": (lambda: nc.Conv2d(3, 4, 1, dtype=F64), (2, 3, 5, 6)),
    "Conv2d depthwise": (lambda: nc.Conv2d(3, 3, 3, groups=3, dtype=F64), (2, 3, 5, 6)),
    "MaxPool2d": (lambda: nc.MaxPool2d(3, stride=2, padding=1), (2, 3, 5, 6)),
    "AvgPool2d": (lambda: nc.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 5, 6)),
    "GlobalAvgPool2d": (lambda: nc.GlobalAvgPool2d(), (2, 3, 5, 6)),
    "Linear": (lambda: nc.Linear(90, 4, dtype=F64), (2, 3, 5, 6)),
    "Flatten": (lambda: nc.Flatten(), (2, 3, 5, 6)),
    "ReLU": (lambda: nc.ReLU(), (2, 3, 5, 6)),
    "LeakyReLU": (lambda: nc.LeakyReLU(0.1), (2, 3, 5, 6)),
    "Sigmoid": (lambda: nc.Sigmoid(), (2, 3, 5, 6)),
    "Tanh": (lambda: nc.Tanh(), (2, 3, 5, 6)),
    "Softmax": (lambda: nc.Softmax(), (2, 3, 5, 6)),
    "Dropout eval": (lambda: nc.Dropout(0.5, seed=0).eval(), (2, 3, 5, 6)),
    "BatchNorm2d": (lambda: nc.BatchNorm2d(3, dtype=F64), (2, 3, 5, 6)),
    "BatchNorm2d eval": (lambda: nc.BatchNorm2d(3, dtype=F64).eval(), (2, 3, 5, 6)),
}


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_layers_accept_non_contiguous_input(name):
    """A transposed view (say, images read channels-last) gives the same results as a copy."""
    make, shape = ALL_LAYERS[name]
    rng = np.random.default_rng(0)
    view = rng.standard_normal(shape[::-1]).T  # Fortran-ordered: no axis is contiguous in C order
    assert not view.flags.c_contiguous
    layer = make()
    expected = layer.forward(np.ascontiguousarray(view))
    dout = rng.standard_normal(expected.shape)
    expected_dx = layer.backward(dout)
    np.testing.assert_allclose(layer.forward(view), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dout.T.copy().T), expected_dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_results_survive_the_next_call(name):
    """The output and dx handed out must not be buffers that the next call overwrites."""
    make, shape = ALL_LAYERS[name]
    rng = np.random.default_rng(0)
    layer = make()
    out = layer.forward(rng.standard_normal(shape))
    dx = layer.backward(rng.standard_normal(out.shape))
    kept_out, kept_dx = out.copy(), dx.copy()
    layer.backward(rng.standard_normal(layer.forward(rng.standard_normal(shape)).shape))
    np.testing.assert_array_equal(out, kept_out)
    np.testing.assert_array_equal(dx, kept_dx)
