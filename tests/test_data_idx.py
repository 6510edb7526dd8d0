"""IDX reading and writing: round trips, the byte layout, and every way a file can be broken."""

import gzip
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numcnn.data import read_idx, write_idx
from numcnn.errors import DataError, DTypeError, ShapeError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def _random_array(dtype, shape, rng):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype) * 1e3


def _idx_bytes(array, dtype_code):
    """The IDX encoding written out by hand from the spec, independent of write_idx."""
    header = bytes([0, 0, dtype_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (0, 28, 28), (1, 1, 1, 2)])
def test_round_trip(tmp_path, dtype, compress, shape):
    array = _random_array(dtype, shape, np.random.default_rng(0))
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)


def test_non_native_byte_order_input_is_written_correctly(tmp_path):
    array = np.arange(6, dtype=">i4").reshape(2, 3)
    write_idx(tmp_path / "a", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)


def test_bytes_follow_the_spec(tmp_path):
    array = np.array([[1, -2, 3], [4, 5, 70000]], dtype=np.int32)
    write_idx(tmp_path / "a", array)
    assert (tmp_path / "a").read_bytes() == (
        b"\x00\x00\x0c\x02" b"\x00\x00\x00\x02" b"\x00\x00\x00\x03"
        + b"".join(struct.pack(">i", v) for v in array.ravel())
    )


def test_reads_hand_made_files_of_every_type(tmp_path):
    for code, dtype in zip([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E], DTYPES):
        array = _random_array(dtype, (4, 3), np.random.default_rng(code))
        (tmp_path / "a").write_bytes(_idx_bytes(array, code))
        np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "gz_without_suffix", array, compress=True)
    write_idx(tmp_path / "raw_with_suffix.gz", array, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "gz_without_suffix"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw_with_suffix.gz"), array)


def test_gzip_output_is_deterministic(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_write_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(DTypeError, match="int64"):
        write_idx(tmp_path / "a", np.arange(3, dtype=np.int64))
    with pytest.raises(DTypeError, match="bool"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=bool))
    with pytest.raises(ShapeError, match="1 to 255"):
        write_idx(tmp_path / "a", np.float32(1.0))


# --- corrupt files ---------------------------------------------------------------------------

VALID = _idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08)  # 16-byte header + 24


def _read_bytes(tmp_path, data, gz=False):
    path = tmp_path / "f"
    path.write_bytes(gzip.compress(data) if gz else data)
    return read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("data, message", [
    (b"\x01" + VALID[1:], "not an IDX file"),
    (VALID[:2] + b"\x0a" + VALID[3:], "not an IDX file"),         # unknown type code
    (VALID[:3] + b"\x00" + VALID[4:], "ndim 0"),
    (VALID[:3] + b"\x20" + VALID[4:], "truncated IDX header"),     # ndim 32, dims cut short
    (VALID[:10], "truncated IDX header"),
    (VALID[:-1], "truncated"),
    (VALID + b"\x00", "trailing bytes"),
    (b"", "truncated IDX header"),
])
def test_corrupt_payload(tmp_path, data, message, gz):
    with pytest.raises(DataError, match=message) as info:
        _read_bytes(tmp_path, data, gz)
    assert str(tmp_path / "f") in str(info.value)


@pytest.mark.parametrize("cut", [1, 5, 11, 20, -9, -1])
def test_truncated_gzip(tmp_path, cut):
    with pytest.raises(DataError, match="gzip"):
        _read_bytes(tmp_path, gzip.compress(VALID)[:cut])


def test_gzip_with_bad_crc(tmp_path):
    data = bytearray(gzip.compress(VALID))
    data[-8] ^= 0xFF  # the CRC32 of the trailer
    with pytest.raises(DataError, match="gzip"):
        _read_bytes(tmp_path, bytes(data))


@pytest.mark.parametrize("gz", [False, True])
def test_absurd_header_is_rejected_without_allocating(tmp_path, gz):
    # 10^6 x 10^6 float64 = 8 TB promised, 100 bytes present.
    data = b"\x00\x00\x0e\x02" + struct.pack(">II", 10**6, 10**6) + bytes(100)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="truncated"):
            _read_bytes(tmp_path, data, gz)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="not found") as info:
        read_idx(tmp_path / "nope.gz")
    assert "nope.gz" in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(DataError, match="directory"):
        read_idx(tmp_path)


# --- fuzzing: any byte string gives a DataError or an array, never another exception ----------

@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "f"


def _read_or_data_error(path, data):
    path.write_bytes(data)
    try:
        out = read_idx(path)
    except DataError:
        return
    assert isinstance(out, np.ndarray)


@st.composite
def valid_idx(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    array = _random_array(dtype, shape, np.random.default_rng(draw(st.integers(0, 2**16))))
    code = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    return _idx_bytes(array, code[dtype])


@st.composite
def mutated(draw, data):
    """data with a few random truncations, byte changes, insertions and appends."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "set", "insert", "append"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "truncate":
            del data[pos:]
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


# 8x the profile's example count (tests/conftest.py): fuzzing needs volume, and each example is cheap.
FUZZ = settings(max_examples=8 * settings.default.max_examples, deadline=None)


@FUZZ
@given(data=st.binary(max_size=64))
def test_fuzz_random_bytes(fuzz_file, data):
    _read_or_data_error(fuzz_file, data)
    _read_or_data_error(fuzz_file, b"\x1f\x8b" + data)  # pretends to be gzip


@FUZZ
@given(data=valid_idx().flatmap(mutated))
def test_fuzz_mutated_raw_and_gzipped_payload(fuzz_file, data):
    _read_or_data_error(fuzz_file, data)
    _read_or_data_error(fuzz_file, gzip.compress(data, mtime=0))


@FUZZ
@given(data=valid_idx().map(lambda raw: gzip.compress(raw, mtime=0)).flatmap(mutated))
def test_fuzz_mutated_gzip_stream(fuzz_file, data):
    _read_or_data_error(fuzz_file, data)
