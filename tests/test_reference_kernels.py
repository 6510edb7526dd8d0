"""numcnn.functional.reference, the textbook version to read first, against the naive loops of
tests/reference.py (the definition) and against the fast kernels it explains, on random shapes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numcnn import functional as F
from numcnn.functional import reference as R

import reference as naive


@st.composite
def configs(draw):
    k = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, k - 1))
    side = draw(st.integers(max(1, k - 2 * pad), 9))
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 3)), f=draw(st.integers(1, 4)),
                h=side, w=draw(st.integers(max(1, k - 2 * pad), 9)), k=k, stride=stride, pad=pad,
                seed=draw(st.integers(0, 2**16)))


def arrays(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"]))
    w = rng.standard_normal((cfg["f"], cfg["c"], cfg["k"], cfg["k"]))
    b = rng.standard_normal(cfg["f"])
    return rng, x, w, b


def close(a, b):
    """Each entry within 1e-10 of its own scale (float64 throughout)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@given(configs())
def test_convolution_matches_the_definition_and_the_fast_kernel(cfg):
    rng, x, w, b = arrays(cfg)
    out, cache = R.conv_forward(x, w, b, cfg["stride"], cfg["pad"])
    close(out, naive.conv2d_ref(x, w, b, cfg["stride"], cfg["pad"]))
    fast, fast_cache = F.conv2d_forward(x, w, b, cfg["stride"], cfg["pad"])
    close(out, fast)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = R.conv_backward(dout, cache)
    for ours, theirs in zip((dx, dw, db), naive.conv2d_backward_ref(dout, x, w, True, cfg["stride"], cfg["pad"])):
        close(ours, theirs)
    for ours, theirs in zip((dx, dw, db), F.conv2d_backward(dout, fast_cache)):
        close(ours, theirs)


@given(configs())
def test_im2col_and_col2im_are_the_textbooks_and_adjoint(cfg):
    rng, x, _, _ = arrays(cfg)
    k, stride, pad = cfg["k"], cfg["stride"], cfg["pad"]
    col = R.im2col(x, k, stride, pad)
    close(col, naive.im2col_ref(x, k, stride, pad))
    close(col, F.im2col(x, k, stride, pad))
    other = rng.standard_normal(col.shape)
    assert np.isclose(np.vdot(col, other), np.vdot(x, R.col2im(other, x.shape, k, stride, pad)))
    close(R.col2im(other, x.shape, k, stride, pad), naive.col2im_ref(other, x.shape, k, stride, pad))


@given(configs())
def test_pooling_matches_the_definition_and_the_fast_kernels(cfg):
    rng, x, _, _ = arrays(cfg)
    k, stride, pad = cfg["k"], cfg["stride"], min(cfg["pad"], cfg["k"] // 2)  # PyTorch's pooling limit
    out, cache = R.max_pool_forward(x, k, stride, pad)
    close(out, naive.max_pool2d_ref(x, k, stride, pad))
    close(out, F.max_pool2d(x, k, stride, pad))
    dout = rng.standard_normal(out.shape)
    dx = R.max_pool_backward(dout, cache)
    close(dx, naive.max_pool2d_backward_ref(dout, x, k, stride, pad))
    close(dx, F.max_pool2d_backward(dout, F.max_pool2d_forward(x, k, stride, pad)[1]))
    out, cache = R.avg_pool_forward(x, k, stride, pad)
    close(out, naive.avg_pool2d_ref(x, k, stride, pad))
    close(out, F.avg_pool2d(x, k, stride, pad))
    dx = R.avg_pool_backward(dout, cache)
    close(dx, naive.avg_pool2d_backward_ref(dout, x.shape, k, stride, pad))


def test_a_wrong_reference_would_be_caught():
    """The comparison can fail: a kernel flipped the wrong way is not the convolution."""
    _, x, w, b = arrays(dict(n=2, c=2, f=3, h=5, w=5, k=3, stride=1, pad=1, seed=0))
    out, _ = R.conv_forward(x, w[:, :, ::-1, ::-1], b, 1, 1)  # a true convolution, not a correlation
    with pytest.raises(AssertionError):
        close(out, naive.conv2d_ref(x, w, b, 1, 1))


def test_the_reference_is_short_enough_to_read_first():
    from pathlib import Path
    source = Path(R.__file__).read_text().splitlines()
    code = [line for line in source if line.strip() and not line.strip().startswith(("#", '"""'))]
    assert len(source) <= 110 and len(code) <= 80
