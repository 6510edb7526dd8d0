"""Mini-batching: coverage, determinism, resumable generator state, and the augmentations."""

import numpy as np
import pytest

from numcnn import init
from numcnn.data import Compose, DataLoader, RandomHorizontalFlip, RandomShift, batches
from numcnn.errors import ConfigError, DataError, ShapeError


def _data(n=23):
    x = np.arange(n * 2 * 3 * 3, dtype=np.float32).reshape(n, 2, 3, 3)
    return x, np.arange(n)


def _epoch(iterable):
    return [(xb.copy(), yb.copy()) for xb, yb in iterable]


def test_batches_cover_every_sample_once_and_keep_pairs():
    x, y = _data()
    got = _epoch(batches(x, y, batch_size=5, seed=0))
    assert [len(yb) for _, yb in got] == [5, 5, 5, 5, 3]
    order = np.concatenate([yb for _, yb in got])
    assert sorted(order) == list(range(23)) and not np.array_equal(order, np.arange(23))
    for xb, yb in got:
        np.testing.assert_array_equal(xb, x[yb])


def test_no_shuffle_keeps_order_and_drop_last():
    x, y = _data()
    got = _epoch(batches(x, y, batch_size=5, shuffle=False, drop_last=True))
    assert [len(yb) for _, yb in got] == [5, 5, 5, 5]
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in got]), np.arange(20))


def test_same_seed_same_batches():
    x, y = _data()
    a = _epoch(batches(x, y, 4, seed=7, augment=RandomShift(1)))
    b = _epoch(batches(x, y, 4, seed=7, augment=RandomShift(1)))
    c = _epoch(batches(x, y, 4, seed=8, augment=RandomShift(1)))
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not all(np.array_equal(ya, yc) for (_, ya), (_, yc) in zip(a, c))


def test_seed_none_follows_numcnn_manual_seed():
    x, y = _data()
    init.manual_seed(3)
    a = _epoch(batches(x, y, 4))
    init.manual_seed(3)
    b = _epoch(batches(x, y, 4))
    assert all(np.array_equal(ya, yb) for (_, ya), (_, yb) in zip(a, b))


def test_a_given_generator_is_advanced_in_place():
    x, y = _data()
    rng = np.random.default_rng(0)
    first = _epoch(batches(x, y, 23, seed=rng))[0][1]
    second = _epoch(batches(x, y, 23, seed=rng))[0][1]
    assert not np.array_equal(first, second)


def test_dataloader_len_and_reiteration():
    x, y = _data()
    loader = DataLoader(x, y, batch_size=5, seed=0)
    assert len(loader) == 5 and len(DataLoader(x, y, 5, drop_last=True)) == 4
    assert len(DataLoader(x[:0], y[:0], 5)) == 0 and list(DataLoader(x[:0], y[:0], 5)) == []
    epoch1, epoch2 = _epoch(loader), _epoch(loader)
    assert len(epoch1) == len(epoch2) == 5
    order1 = np.concatenate([yb for _, yb in epoch1])
    order2 = np.concatenate([yb for _, yb in epoch2])
    assert sorted(order1) == sorted(order2) and not np.array_equal(order1, order2)


def test_dataloader_state_can_be_saved_and_restored():
    x, y = _data()
    loader = DataLoader(x, y, batch_size=4, seed=1, augment=Compose([RandomShift(1), RandomHorizontalFlip()]))
    _epoch(loader)
    state = loader.rng.bit_generator.state
    expected = _epoch(loader)
    _epoch(loader)  # move on, then rewind
    loader.rng.bit_generator.state = state
    for (xa, ya), (xb, yb) in zip(expected, _epoch(loader)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "8", None])
def test_bad_batch_size(batch_size):
    x, y = _data()
    with pytest.raises(ConfigError, match="batch_size"):
        batches(x, y, batch_size)  # raised by the call, before any iteration
    with pytest.raises(ConfigError, match="batch_size"):
        DataLoader(x, y, batch_size)


def test_bad_arguments():
    x, y = _data()
    with pytest.raises(DataError, match="same number of samples"):
        batches(x, y[:-1], 4)
    with pytest.raises(DataError, match="same number of samples"):
        DataLoader(x, y[:-1], 4)
    with pytest.raises(ConfigError, match="seed"):
        batches(x, y, 4, seed=-1)
    with pytest.raises(ConfigError, match="seed"):
        DataLoader(x, y, 4, seed="abc")
    with pytest.raises(ConfigError, match="augment"):
        batches(x, y, 4, augment="shift")
    assert isinstance(DataError("x"), ValueError) and isinstance(ConfigError("x"), ValueError)


# --- augmentations -----------------------------------------------------------------------------

def _shift_reference(xb, dy, dx):
    """Shift each image by (dy[i], dx[i]) with zero fill, one image and one pixel at a time."""
    n, c, h, w = xb.shape
    out = np.zeros_like(xb)
    for i in range(n):
        for r in range(h):
            for s in range(w):
                if 0 <= r - dy[i] < h and 0 <= s - dx[i] < w:
                    out[i, :, r, s] = xb[i, :, r - dy[i], s - dx[i]]
    return out


@pytest.mark.parametrize("max_shift", [1, 2, 3])
def test_random_shift_matches_the_loop_reference(max_shift):
    xb = np.random.default_rng(0).random((16, 3, 7, 6), dtype=np.float32)
    before = xb.copy()
    out = RandomShift(max_shift)(xb, np.random.default_rng(5))
    rng = np.random.default_rng(5)  # the same draws RandomShift makes
    dy = rng.integers(-max_shift, max_shift + 1, size=16)
    dx = rng.integers(-max_shift, max_shift + 1, size=16)
    np.testing.assert_array_equal(out, _shift_reference(xb, dy, dx))
    assert out.dtype == np.float32 and out.shape == xb.shape
    np.testing.assert_array_equal(xb, before)  # input untouched
    assert not np.shares_memory(out, xb)


def test_random_shift_keeps_dtype_and_zero_is_a_copy():
    xb = np.ones((4, 1, 5, 5))
    assert RandomShift(2)(xb, np.random.default_rng(0)).dtype == np.float64
    out = RandomShift(0)(xb, np.random.default_rng(0))
    np.testing.assert_array_equal(out, xb)
    assert out is not xb
    with pytest.raises(ConfigError):
        RandomShift(-1)
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        RandomShift(1)(np.ones((4, 5, 5)), np.random.default_rng(0))


def test_horizontal_flip():
    xb = np.random.default_rng(0).random((50, 2, 4, 4), dtype=np.float32)
    before = xb.copy()
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(xb, np.random.default_rng(0)), xb[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(xb, np.random.default_rng(0)), xb)
    out = RandomHorizontalFlip(0.5)(xb, np.random.default_rng(0))
    flipped = np.array([np.array_equal(o, x[..., ::-1]) for o, x in zip(out, xb)])
    kept = np.array([np.array_equal(o, x) for o, x in zip(out, xb)])
    assert np.all(flipped | kept) and 10 < flipped.sum() < 40
    assert out.dtype == np.float32
    np.testing.assert_array_equal(xb, before)
    for p in (-0.1, 1.5, "half"):
        with pytest.raises(ConfigError):
            RandomHorizontalFlip(p)


def test_compose_applies_in_order_and_loader_augments_copies():
    x, y = _data(8)
    before = x.copy()
    calls = []

    def tag(value):
        def augment(xb, rng):
            calls.append(value)
            return xb + value
        return augment

    out = Compose([tag(1), tag(10)])(x, np.random.default_rng(0))
    assert calls == [1, 10]
    np.testing.assert_array_equal(out, x + 11)
    for xb, _ in batches(x, y, 3, shuffle=False, augment=Compose([RandomShift(1), RandomHorizontalFlip()])):
        assert xb.dtype == np.float32 and xb.shape[1:] == (2, 3, 3)
    np.testing.assert_array_equal(x, before)
    with pytest.raises(ConfigError):
        Compose([RandomShift(1), "flip"])
