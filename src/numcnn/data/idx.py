"""The IDX file format of MNIST and Fashion-MNIST: reading and writing, raw or gzip-compressed.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the data,
big-endian and C-ordered:

::

    byte 0, 1 : 0x00 0x00
    byte 2    : type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
    byte 3    : ndim
    then      : ndim x uint32 dims, then prod(dims) * itemsize bytes of data

The reader trusts nothing in the file. The header's promised size is checked against the real
size *before* the data is read, so a corrupt header cannot make us allocate terabytes: for a
raw file the file size is known up front; for a gzip file the decompressed size is not, so the
stream is read in chunks and reading stops one byte past the promise. Every way a file can be
wrong (missing, bad magic, truncated, trailing bytes, broken gzip) ends in ``DataError``.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from ..errors import DataError, DTypeError, ShapeError

# Big-endian dtypes, as the IDX spec stores them; arrays are handed out in native byte order.
TYPE_CODES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Keyed by (kind, itemsize) so that both byte orders of e.g. int32 find their code.
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in TYPE_CODES.items()}

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_MAX_DIM = 2**32 - 1


def _type_list() -> str:
    return ", ".join(f"0x{code:02X} {dt.newbyteorder('=').name}" for code, dt in TYPE_CODES.items())


def _open_binary(path: Path) -> BinaryIO:
    """Open path for reading, turning every OS-level failure into a DataError naming it."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"IDX file not found: expected a file at {path}, found nothing there") from None
    except IsADirectoryError:
        raise DataError(f"expected an IDX file at {path}, found a directory") from None
    except OSError as exc:
        raise DataError(f"cannot open IDX file {path}: {exc.strerror or exc}") from exc


@contextmanager
def open_payload(path: str | os.PathLike) -> Iterator[tuple[BinaryIO, int | None]]:
    """Yield (stream of the decompressed bytes, their size if known up front) for a raw or gzip file.

    Gzip is recognised by its magic bytes 0x1f 0x8b, not by the file name, since people
    gunzip files without renaming them and vice versa. The size is the file size for a raw
    file and None for a gzip file. Errors from a broken gzip stream, wherever they surface
    while the caller reads, become DataError naming the file.
    """
    path = Path(path)
    is_gzip = False
    with _open_binary(path) as f:
        try:
            is_gzip = f.read(2) == GZIP_MAGIC
            f.seek(0)
            if not is_gzip:
                yield f, os.fstat(f.fileno()).st_size
                return
            with gzip.GzipFile(fileobj=f, mode="rb") as stream:
                yield stream, None
        except (EOFError, zlib.error, OSError) as exc:
            # gzip reports a cut-off stream as EOFError, a bad header or CRC as BadGzipFile
            # (an OSError) and garbled deflate data as zlib.error; a raw read can fail with OSError.
            kind = "gzip file" if is_gzip else "file"
            raise DataError(f"{path}: expected a complete, readable {kind}, found a corrupt or "
                            f"truncated one ({type(exc).__name__}: {exc})") from exc


def _read_exactly(stream: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise DataError(f"{path}: truncated IDX header: expected {n} bytes of {what}, found {len(data)}")
    return data


def _read_at_most(stream: BinaryIO, cap: int) -> bytearray:
    """Read until EOF or until cap bytes, in chunks, so memory follows what the file really holds."""
    buf = bytearray()
    while len(buf) < cap:
        chunk = stream.read(min(_CHUNK, cap - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _parse(stream: BinaryIO, size: int | None, path: Path) -> np.ndarray:
    """Decode one IDX payload from stream; size is the payload's total length if known."""
    magic = _read_exactly(stream, 4, path, "magic number")
    zero, code, ndim = magic[:2], magic[2], magic[3]
    if zero != b"\x00\x00" or code not in TYPE_CODES:
        raise DataError(f"{path}: not an IDX file: expected magic 0x00 0x00 <type> <ndim> with type one of "
                        f"({_type_list()}), found bytes {' '.join(f'0x{b:02X}' for b in magic)}")
    if ndim == 0:
        raise DataError(f"{path}: expected an IDX header with at least 1 dimension, found ndim 0")
    dims = struct.unpack(f">{ndim}I", _read_exactly(stream, 4 * ndim, path, f"{ndim} dimensions"))

    dtype = TYPE_CODES[code]
    header_bytes = 4 + 4 * ndim
    expected = math.prod(dims) * dtype.itemsize  # Python ints: an absurd header cannot overflow
    promise = f"header says {dims} of {dtype.newbyteorder('=').name} = {expected} data bytes"
    if size is not None and size - header_bytes != expected:
        found = size - header_bytes
        problem = "truncated" if found < expected else "trailing bytes after the data"
        raise DataError(f"{path}: {problem}: {promise}, found {found}")

    data = _read_at_most(stream, expected + 1)  # one extra byte tells "too long" from "exact"
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "trailing bytes after the data"
        found = len(data) if len(data) < expected else f"more than {expected}"
        raise DataError(f"{path}: {problem}: {promise}, found {found}")
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a native-byte-order array.

    Parameters
    ----------
    path
        file name; gzip is detected from the content, whatever the extension.

    Returns
    -------
    ndarray
        Of the header's shape, dtype uint8, int8, int16, int32, float32 or float64 (from the
        type code); e.g. (60000, 28, 28) uint8 for MNIST training images.

    Raises
    ------
    DataError
        If the file is missing or unreadable, the magic number or header is invalid, the gzip
        stream is broken, or the data is shorter or longer than the header says.
    """
    path = Path(path)
    with open_payload(path) as (stream, size):
        return _parse(stream, size, path)


def write_idx(path: str | os.PathLike, array, compress: bool | None = None) -> None:
    """Write array as an IDX file, gzip-compressed if compress (default: if path ends in .gz).

    The gzip header carries no time stamp or file name, so the same array always gives the
    same bytes (``scripts/make_sample.py`` relies on that).

    Parameters
    ----------
    path : str or path
        The file name to write (overwritten if it exists).
    array : array_like
        Of any shape (d1, ..., dk) with 1 <= k <= 255 and every di < 2**32, dtype uint8, int8,
        int16, int32, float32 or float64 (IDX has no int64: cast first).
    compress : bool, optional
        Write gzip if True, raw if False; None decides by the ".gz" suffix.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODE_OF.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise DTypeError(f"write_idx({path}): expected dtype one of ({_type_list()}), got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ShapeError(f"write_idx({path}): expected an array with 1 to 255 dimensions, got shape {array.shape}")
    if max(array.shape) > _MAX_DIM:
        raise ShapeError(f"write_idx({path}): expected every dimension < 2**32, got shape {array.shape}")
    if compress is None:
        compress = path.suffix == ".gz"

    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = np.ascontiguousarray(array, dtype=TYPE_CODES[code]).tobytes()
    with open(path, "wb") as f:
        if compress:
            # Level 6 (zlib's default): level 9 takes 10x as long on images for a 1% smaller file.
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=6, mtime=0) as gz:
                gz.write(header)
                gz.write(data)
        else:
            f.write(header)
            f.write(data)
