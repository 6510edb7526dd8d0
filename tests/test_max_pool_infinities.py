"""Max pooling where -inf ties with the padding: the gradient must reach the input, as in PyTorch.

Padding counts as -inf, so a window whose real pixels are all -inf has a max tied between
padding and input. PyTorch starts each window at its first real pixel and never lets padding
win; so must we, or that window's gradient vanishes into the padding.
"""

import numpy as np
import torch
import torch.nn.functional as TF
from hypothesis import given

from numcnn import MaxPool2d
from numcnn.functional import max_pool2d_backward, max_pool2d_forward
from parity import pool_configs, seeds
from reference import max_pool2d_backward_ref, max_pool2d_ref


def _torch_pool(x, dout, kernel_size, stride, padding):
    t = torch.tensor(x, requires_grad=True)
    out = TF.max_pool2d(t, kernel_size, stride, padding)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), t.grad.numpy()


def test_an_all_minus_inf_input_sends_every_gradient_to_its_first_pixel():
    # The case: 3x3 windows, stride 1, pad 1 on a 2x2 input of -inf. All four windows
    # hold the whole input; each one's first real pixel is (0, 0).
    layer = MaxPool2d(3, 1, 1)
    x = np.full((1, 1, 2, 2), -np.inf, np.float32)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert np.all(out == -np.inf)
    np.testing.assert_array_equal(dx.ravel(), [4, 0, 0, 0])
    _, torch_dx = _torch_pool(x, np.ones_like(out), 3, 1, 1)
    np.testing.assert_array_equal(dx, torch_dx)


def test_each_window_starts_at_its_own_first_real_pixel():
    # Kernel 2, stride 2, pad 1 on 3x3: window (i, j) covers padded rows 2i..2i+1, that is
    # input rows 2i-1..2i, so its first real pixel is (max(2i-1, 0), max(2j-1, 0)).
    x = np.full((1, 1, 3, 3), -np.inf)
    out, cache = max_pool2d_forward(x, 2, 2, 1)
    dx = max_pool2d_backward(np.arange(1.0, 5.0).reshape(1, 1, 2, 2), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 0], [3, 4, 0], [0, 0, 0]])


@given(config=pool_configs(max_kernel=4, max_extra=4), seed=seeds)
def test_minus_inf_heavy_inputs_match_torch_and_the_reference(config, seed):
    # Mostly -inf, with a few ties at 0 and 1: padding, -inf and ties all compete.
    rng = np.random.default_rng(seed)
    x = rng.choice([-np.inf, 0.0, 1.0], size=config["x_shape"], p=[0.8, 0.15, 0.05])
    geometry = (config["kernel_size"], config["stride"], config["padding"])
    out, cache = max_pool2d_forward(x, *geometry)
    dout = rng.standard_normal(out.shape)
    dx = max_pool2d_backward(dout, cache)
    torch_out, torch_dx = _torch_pool(x, dout, *[g if g is not None else config["kernel_size"] for g in geometry])
    np.testing.assert_array_equal(out, torch_out)
    np.testing.assert_allclose(dx, torch_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out, max_pool2d_ref(x, *geometry))
    np.testing.assert_allclose(dx, max_pool2d_backward_ref(dout, x, *geometry), rtol=1e-12, atol=1e-12)


@given(config=pool_configs(max_kernel=4, max_extra=4), seed=seeds)
def test_nan_heavy_inputs_match_torch(config, seed):
    # A NaN tap beats any running max, and the last NaN of a window wins (PyTorch's rule
    # "val > max or isnan(val)"); the fast path takes winners from plain comparisons and must
    # notice the NaN windows. Infinities and ties at 0 compete with them.
    rng = np.random.default_rng(seed)
    x = rng.choice([np.nan, -np.inf, np.inf, 0.0, 1.0], size=config["x_shape"], p=[0.2, 0.2, 0.1, 0.3, 0.2])
    geometry = (config["kernel_size"], config["stride"], config["padding"])
    out, cache = max_pool2d_forward(x.astype(np.float32), *geometry)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = max_pool2d_backward(dout, cache)
    torch_out, torch_dx = _torch_pool(x.astype(np.float32), dout,
                                      *[g if g is not None else config["kernel_size"] for g in geometry])
    np.testing.assert_array_equal(out, torch_out)  # NaN where torch has NaN
    np.testing.assert_array_equal(dx, torch_dx)


def test_a_nan_in_a_strided_view_is_found():
    # The input as a convolution hands it on: a channel-major view with gaps between rows.
    base = np.zeros((3, 2, 4, 5), np.float32)
    base[1, 0, 2, 3] = np.nan
    x = base[..., :4].transpose(1, 0, 2, 3)
    out, cache = max_pool2d_forward(x, 2)
    dx = max_pool2d_backward(np.ones_like(out), cache)
    torch_out, torch_dx = _torch_pool(np.ascontiguousarray(x), np.ones_like(out), 2, 2, 0)
    np.testing.assert_array_equal(out, torch_out)
    np.testing.assert_array_equal(dx, torch_dx)
    assert dx[0, 1, 2, 3] == 1 and np.isnan(out[0, 1, 1, 1])
