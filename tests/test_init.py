"""The weight initialisers in numcnn.init, against torch.nn.init: the spread its gain and fans
give, the shape of the distribution on a large draw, shapes, dtypes, bounds and seeding."""

import math

import numpy as np
import pytest
import torch

import numcnn as nc
from numcnn import init

# Large weights with fan_in != fan_out, so a swapped fan shows: (out, in, kh, kw) and (out, in).
SHAPES = [(128, 64, 5, 5), (256, 1024)]
DTYPES = (np.float32, np.float64)


def torch_fans(shape):
    # PyTorch's own fan rule: fan_in = in * receptive field, fan_out = out * receptive field.
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def torch_std(name, shape):
    """The standard deviation torch.nn.init's counterpart of name draws with."""
    fan_in, fan_out = torch_fans(shape)
    if name.startswith("he_"):  # kaiming_*_(mode="fan_in", nonlinearity="relu")
        return torch.nn.init.calculate_gain("relu") / math.sqrt(fan_in)
    return torch.nn.init.calculate_gain("linear") * math.sqrt(2.0 / (fan_in + fan_out))  # xavier_*_


# ours -> (torch's counterpart, uniform?)
RANDOM = {
    "he_normal": (lambda t: torch.nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity="relu"), False),
    "he_uniform": (lambda t: torch.nn.init.kaiming_uniform_(t, mode="fan_in", nonlinearity="relu"), True),
    "xavier_normal": (torch.nn.init.xavier_normal_, False),
    "xavier_uniform": (torch.nn.init.xavier_uniform_, True),
}
QUANTILES = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]


@pytest.mark.parametrize("shape", SHAPES, ids=["conv", "linear"])
@pytest.mark.parametrize("name", sorted(RANDOM))
def test_spread_and_distribution_match_torch(name, shape):
    std = torch_std(name, shape)
    w = getattr(init, name)(shape, np.float64, rng=np.random.default_rng(0))
    n = w.size
    # On ~2e5 draws the sample std is within ~0.2% of the true one, the mean within ~0.002 std.
    assert abs(w.std() / std - 1) < 0.015, f"std {w.std():.5g}, torch's formula {std:.5g}"
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    torch.manual_seed(0)
    theirs = RANDOM[name][0](torch.empty(shape, dtype=torch.float64)).numpy()
    # Same family (normal or uniform) and scale: the quantiles agree with torch's draw.
    np.testing.assert_allclose(np.quantile(w, QUANTILES), np.quantile(theirs, QUANTILES), atol=0.05 * std)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=["conv", "linear"])
@pytest.mark.parametrize("name", [name for name, (_, uniform) in RANDOM.items() if uniform])
def test_uniforms_stay_within_torchs_bound_and_fill_it(name, shape, dtype):
    bound = math.sqrt(3.0) * torch_std(name, shape)  # torch: U(-b, b) with b = sqrt(3) * std
    w = getattr(init, name)(shape, dtype, rng=np.random.default_rng(1))
    assert np.abs(w).max() <= dtype(bound)
    assert w.max() > 0.999 * bound and w.min() < -0.999 * bound


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3, 2, 5), (7, 2), (3, 2, 4)])
@pytest.mark.parametrize("name", sorted(RANDOM) + ["zeros", "ones"])
def test_shape_and_dtype_are_the_ones_asked_for(name, shape, dtype):
    w = getattr(init, name)(shape, dtype)
    assert w.shape == shape and w.dtype == dtype
    assert np.all(np.isfinite(w))


def test_the_default_dtype_is_float32():
    for name in sorted(RANDOM) + ["zeros", "ones"]:
        assert getattr(init, name)((3, 4)).dtype == np.float32, name


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_float64_draws_have_float64_resolution(name):
    w = getattr(init, name)((64, 64), np.float64, rng=np.random.default_rng(2))
    assert np.any(w != w.astype(np.float32).astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_and_ones(dtype):
    np.testing.assert_array_equal(init.zeros((2, 3), dtype), [[0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(init.ones((2, 3), dtype), [[1, 1, 1], [1, 1, 1]])


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_manual_seed_makes_draws_reproducible(name):
    draw = getattr(init, name)
    nc.manual_seed(5)
    first = draw((8, 3, 3, 3)), draw((8, 3, 3, 3))
    nc.manual_seed(5)
    second = draw((8, 3, 3, 3)), draw((8, 3, 3, 3))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])  # the generator moves on between draws
    nc.manual_seed(6)
    assert not np.array_equal(draw((8, 3, 3, 3)), first[0])


@pytest.mark.parametrize("name", sorted(RANDOM) + ["zeros", "ones"])
def test_rng_argument_is_used_and_leaves_the_default_generator_alone(name):
    draw = getattr(init, name)
    nc.manual_seed(0)
    expected_next = init.default_rng().standard_normal(3)
    nc.manual_seed(0)
    a = draw((6, 5), rng=np.random.default_rng(11))
    b = draw((6, 5), rng=np.random.default_rng(11))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(init.default_rng().standard_normal(3), expected_next)
    if name in RANDOM:
        assert not np.array_equal(a, draw((6, 5), rng=np.random.default_rng(12)))


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_a_weight_needs_two_dimensions_for_its_fans(name):
    with pytest.raises(ValueError, match="rank >= 2"):
        getattr(init, name)((5,))


@pytest.mark.parametrize("layer, shape", [(lambda: nc.Conv2d(64, 128, 5), (128, 64, 5, 5)),
                                          (lambda: nc.Linear(1024, 256), (256, 1024))], ids=["Conv2d", "Linear"])
def test_layers_start_from_he_normal_weights_and_zero_bias(layer, shape):
    nc.manual_seed(3)
    made = layer()
    weight = made.params["weight"]
    assert weight.shape == shape and weight.dtype == np.float32
    assert abs(weight.std() / torch_std("he_normal", shape) - 1) < 0.015
    np.testing.assert_array_equal(made.params["bias"], np.zeros(shape[0], np.float32))
