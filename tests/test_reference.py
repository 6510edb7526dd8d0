"""The naive references in reference.py against PyTorch, so that they can serve as the definition
the fast kernels are checked against. Tiny shapes only: the references are Python loops."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

from parity import assert_close, conv_configs, layer_args, pool_configs, seeds, tied_values, window_configs
from reference import (avg_pool2d_backward_ref, avg_pool2d_ref, col2im_ref, conv2d_backward_ref, conv2d_ref,
                       im2col_ref, max_pool2d_backward_ref, max_pool2d_ref, pair)

F64 = np.float64


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


@given(config=conv_configs(max_kernel=3, max_extra=3), seed=seeds)
def test_conv2d_ref_matches_torch(config, seed):
    rng = np.random.default_rng(seed)
    args = layer_args(config)
    weight_shape = (args["out_channels"], args["in_channels"] // args["groups"]) + pair(args["kernel_size"])
    x, weight = rng.standard_normal(config["x_shape"]), rng.standard_normal(weight_shape)
    bias = rng.standard_normal(args["out_channels"]) if args["bias"] else None
    geometry = dict(stride=args["stride"], padding=args["padding"], dilation=args["dilation"],
                    groups=args["groups"])

    tx, tw = _t(x, True), _t(weight, True)
    tb = None if bias is None else _t(bias, True)
    tout = TF.conv2d(tx, tw, tb, **geometry)
    assert_close("conv2d_ref", conv2d_ref(x, weight, bias, **geometry), tout, F64)

    dout = rng.standard_normal(tuple(tout.shape))
    tout.backward(_t(dout))
    dx, dweight, dbias = conv2d_backward_ref(dout, x, weight, bias is not None, **geometry)
    assert_close("conv2d_backward_ref dx", dx, tx.grad, F64)
    assert_close("conv2d_backward_ref dweight", dweight, tw.grad, F64)
    if bias is None:
        assert dbias is None
    else:
        assert_close("conv2d_backward_ref dbias", dbias, tb.grad, F64)


@given(config=window_configs(max_kernel=3, max_extra=3), seed=seeds)
def test_im2col_ref_and_col2im_ref_match_torch_unfold_and_fold(config, seed):
    rng = np.random.default_rng(seed)
    geometry = layer_args(config)
    x = rng.standard_normal(config["x_shape"])
    n, c, h, w = x.shape
    unfolded = TF.unfold(_t(x), **geometry)                          # (N, C*KH*KW, L)
    expected_col = unfolded.transpose(1, 2).reshape(-1, unfolded.shape[1])
    assert_close("im2col_ref", im2col_ref(x, **geometry), expected_col, F64)

    col = rng.standard_normal(tuple(expected_col.shape))
    folded = TF.fold(_t(col).reshape(n, -1, col.shape[1]).transpose(1, 2), output_size=(h, w), **geometry)
    assert_close("col2im_ref", col2im_ref(col, x.shape, **geometry), folded, F64)


@given(config=pool_configs(max_kernel=3, max_extra=3), seed=seeds, ties=st.booleans())
def test_max_pool2d_ref_matches_torch(config, seed, ties):
    rng = np.random.default_rng(seed)
    geometry = layer_args(config)
    x = tied_values(rng, config["x_shape"], F64) if ties else rng.standard_normal(config["x_shape"])
    tx = _t(x, True)
    tout = TF.max_pool2d(tx, **geometry)
    assert_close("max_pool2d_ref", max_pool2d_ref(x, **geometry), tout, F64)
    dout = rng.standard_normal(tuple(tout.shape))
    tout.backward(_t(dout))
    assert_close("max_pool2d_backward_ref", max_pool2d_backward_ref(dout, x, **geometry), tx.grad, F64)


@given(config=pool_configs(max_kernel=3, max_extra=3, avg=True), seed=seeds)
def test_avg_pool2d_ref_matches_torch(config, seed):
    rng = np.random.default_rng(seed)
    geometry = layer_args(config)
    x = rng.standard_normal(config["x_shape"])
    tx = _t(x, True)
    tout = TF.avg_pool2d(tx, **geometry)
    assert_close("avg_pool2d_ref", avg_pool2d_ref(x, **geometry), tout, F64)
    dout = rng.standard_normal(tuple(tout.shape))
    tout.backward(_t(dout))
    assert_close("avg_pool2d_backward_ref", avg_pool2d_backward_ref(dout, x.shape, **geometry), tx.grad, F64)


@pytest.mark.parametrize("kernel_size, dilation", [((2, 4), 1), (3, 2), ((2, 3), (3, 2))])
def test_conv2d_ref_same_padding_puts_the_odd_row_bottom_right_like_torch(kernel_size, dilation):
    rng = np.random.default_rng(0)
    x, weight = rng.standard_normal((1, 2, 5, 6)), rng.standard_normal((3, 2) + pair(kernel_size))
    expected = TF.conv2d(_t(x), _t(weight), padding="same", dilation=dilation)
    out = conv2d_ref(x, weight, padding="same", dilation=dilation)
    assert out.shape == (1, 3, 5, 6)
    assert_close("conv2d_ref same", out, expected, F64)


def test_max_pool2d_backward_ref_sends_ties_to_the_first_element_like_torch():
    x = np.ones((1, 1, 4, 4))
    tx = _t(x, True)
    TF.max_pool2d(tx, 2, 1).sum().backward()
    dx = max_pool2d_backward_ref(np.ones((1, 1, 3, 3)), x, 2, 1)
    assert_close("ties", dx, tx.grad, F64)
    assert dx[0, 0, 3].sum() == 0 and dx[0, 0, :, 3].sum() == 0  # never the last row or column
