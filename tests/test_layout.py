"""Element-wise passes over the memory a view lies in (functional.layout), and ReLU through them:
any layout gives the same values as NumPy's own element-wise ufunc."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from numcnn import functional as F
from numcnn import runtime as threads
from numcnn.functional.layout import SHORT_ROW_BYTES, copy_rows, empty_like_span, same_span, span


def _base(shape=(6, 5, 7, 9), dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def conv_output_view():
    """A convolution's output as conv2d_forward hands it on: channel-major wide rows, seen as NCHW."""
    x = _base((2, 3, 9, 9))
    w = _base((4, 3, 3, 3), seed=1)
    return F.conv2d_forward(x, w, None, 1, 1)[0]


DENSE = {
    "contiguous": lambda: _base(),
    "transposed": lambda: _base().transpose(1, 0, 3, 2),
    "conv output": conv_output_view,
    "narrowed rows": lambda: _base((4, 3, 8, 10))[..., :9],
    "float64": lambda: _base(dtype=np.float64).transpose(0, 2, 3, 1),
    "one element": lambda: _base((1, 1, 1, 1)),
}
SPARSE = {
    "every other column": lambda: _base()[..., ::2],
    "reversed": lambda: _base()[::-1],
    "broadcast": lambda: np.broadcast_to(_base((1, 5, 7, 9)), (6, 5, 7, 9)),
    "overlapping windows": lambda: as_strided(_base((64,)), shape=(8, 8), strides=(16, 4)),
    "0-d": lambda: np.array(1.5, dtype=np.float32),
    "empty": lambda: np.zeros((0, 3), dtype=np.float32),
}


@pytest.mark.parametrize("name", sorted(DENSE))
def test_span_of_a_dense_view_covers_exactly_its_elements(name):
    x = DENSE[name]()
    flat = span(x)
    assert flat is not None and flat.ndim == 1 and x.size <= flat.size <= 1.25 * x.size
    # x read back through the span: the same element at every index
    assert np.array_equal(as_strided(flat, x.shape, x.strides), x)
    out, out_flat = empty_like_span(x, flat)
    out_flat[:] = np.arange(out_flat.size)  # every position of the block numbered
    assert out.shape == x.shape and out.strides == x.strides and out.dtype == x.dtype
    assert len(np.unique(out)) == x.size  # no two elements share memory


@pytest.mark.parametrize("name", sorted(SPARSE))
def test_span_refuses_sparse_overlapping_and_degenerate_views(name):
    assert span(SPARSE[name]()) is None


@pytest.mark.parametrize("name", sorted(DENSE) + sorted(SPARSE))
@pytest.mark.parametrize("into", ["dense", "rows of a wider buffer", "float64"])
def test_copy_rows_writes_what_assignment_writes_and_nothing_else(name, into):
    """Any source layout (short rows, long rows, strided, broadcast, reversed, empty) into a
    dense array, into the interior rows of a wider one (as pad writes), or with a dtype cast."""
    src = (DENSE if name in DENSE else SPARSE)[name]()
    if into == "rows of a wider buffer":
        memory = np.full(src.shape[:-1] + (src.shape[-1] + 3,) if src.ndim else (), -7.0, src.dtype)
        dst = memory[..., 1:1 + src.shape[-1]] if src.ndim else memory
    else:
        memory = dst = np.full(src.shape, -7.0, np.float64 if into == "float64" else src.dtype)
    before = memory.copy()
    copy_rows(dst, src)
    want = before.copy()
    (want[..., 1:1 + src.shape[-1]] if into == "rows of a wider buffer" and src.ndim else want)[...] = src
    np.testing.assert_array_equal(memory, want)


def test_copy_rows_moves_short_rows_as_blocks_and_long_rows_as_elements(monkeypatch):
    """Which way a copy went, seen from np.copyto's arguments: records for rows up to
    SHORT_ROW_BYTES, the arrays themselves beyond (where NumPy's own copy is faster)."""
    seen = []
    real = np.copyto
    monkeypatch.setattr(np, "copyto", lambda dst, src, **kw: (seen.append(dst.dtype.kind), real(dst, src, **kw)))
    short = SHORT_ROW_BYTES // 4
    for width, kind in ((short, "V"), (short + 1, "f")):
        memory = _base((3, 4, 5, width + 1))
        src = memory[..., :width]
        dst = np.empty(src.shape, np.float32)
        seen.clear()
        copy_rows(dst, src)
        assert np.array_equal(dst, src) and seen == ([kind] if kind == "V" else [])


def test_same_span_needs_equal_strides():
    x = _base()
    assert same_span(x, x.copy())[0] is not None
    assert same_span(x, np.asfortranarray(x)) == (None, None)
    assert same_span(x, x[..., ::2]) == (None, None)


@pytest.mark.parametrize("name", sorted(DENSE) + sorted(SPARSE))
@pytest.mark.parametrize("count", [1, 2])
def test_relu_on_any_layout_equals_numpys_maximum(name, count):
    x = (DENSE | SPARSE)[name]()
    threads.set_num_threads(count)
    try:
        out = F.relu(x)
        dout = _base(x.shape, x.dtype, seed=3) if x.size else np.zeros(x.shape, x.dtype)
        dx = F.relu_backward(dout, x)
    finally:
        threads.set_num_threads(1)
    assert out.shape == x.shape and out.dtype == x.dtype and isinstance(out, np.ndarray)
    assert np.array_equal(out, np.maximum(x, 0))
    assert dx.shape == x.shape and dx.dtype == x.dtype
    assert np.array_equal(dx, np.where(x > 0, dout, 0))


def test_relu_keeps_nan_and_signed_zero_as_numpy_does():
    x = np.array([np.nan, -0.0, 0.0, -np.inf, np.inf, -1e-45, 2.0], dtype=np.float32)
    big = np.tile(x, 5000)  # long enough for the blocked pass and its tail
    for data in (x, big):
        out = F.relu(data)
        assert np.array_equal(out, np.maximum(data, np.float32(0)), equal_nan=True)


def test_relu_result_is_writable_and_leaves_its_input_alone():
    x = conv_output_view()
    before = x.copy()
    out = F.relu(x)
    out[...] = 7
    assert np.array_equal(x, before)


@pytest.mark.parametrize("name", sorted(DENSE))
@pytest.mark.parametrize("count", [1, 2])
def test_relu_backward_where_dout_shares_xs_layout(name, count):
    """A conv's output and the next conv's input gradient share strides: the pass runs flat."""
    x = DENSE[name]()
    dout, flat = empty_like_span(x, span(x))
    flat[:] = np.random.default_rng(5).standard_normal(flat.size)  # gaps included
    threads.set_num_threads(count)
    try:
        dx = F.relu_backward(dout, x)
    finally:
        threads.set_num_threads(1)
    assert dx.strides == dout.strides and dx.dtype == x.dtype
    assert np.array_equal(dx, np.where(x > 0, dout, 0))


@pytest.mark.parametrize("name", ["conv output", "transposed", "narrowed rows", "every other column"])
@pytest.mark.parametrize("geometry", [(2, 2, 0), (3, 2, 0), (3, 1, 1)], ids=["tiling", "overlapping", "padded"])
def test_max_pool_input_gradient_of_a_view_equals_that_of_a_copy(name, geometry):
    """Pooling reads a view of any layout: the same values as from a contiguous copy."""
    x = (DENSE | SPARSE)[name]()
    out, cache = F.max_pool2d_forward(x, *geometry)
    ref_out, ref_cache = F.max_pool2d_forward(np.ascontiguousarray(x), *geometry)
    dout = _base(out.shape, x.dtype, seed=7)
    dx = F.max_pool2d_backward(dout, cache)
    assert np.array_equal(out, ref_out)
    assert np.array_equal(dx, F.max_pool2d_backward(dout, ref_cache))
