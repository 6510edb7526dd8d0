"""Safe reading and crash-safe writing of .npz files (no pickle, ever).

``atomic_savez`` writes to a temporary file in the destination folder, fsyncs it, then renames
it over the destination, so a crash leaves either the old file or the new one, never half of
one. ``read_npz`` checks every member's header against the bytes actually present before
NumPy allocates anything, so a file claiming 10^12 items is rejected, not allocated.

A file written with ``digest=True`` also holds the SHA-256 of its arrays and its metadata, and
``read_npz`` refuses it when they no longer match: a bit flipped on the disk, or a copy cut
short, is found on reading instead of being trained on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import ConfigError, ModelFileError

META_KEY = "__numcnn__"
DIGEST_KEY = "__sha256__"


def umask_mode(fd: int) -> None:
    """Give the file open as fd the mode a plain open() would have (0o666 less the umask).

    mkstemp makes its file 0600; renamed into place as is, a model or checkpoint would be
    unreadable to anyone else, unlike every other file the user writes.
    """
    os.fchmod(fd, 0o666 & ~_umask())


def _umask() -> int:
    # Linux states it in /proc; elsewhere the only way to read it is to set it and put it back
    # (for an instant, process-wide: a file another thread creates meanwhile gets umask 022).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_output(path, overwrite: bool = False, source=None) -> Path:
    """Refuse to write ``path`` where that would lose something: a ConfigError if it is the
    same file as ``source`` (always), or if it exists and not ``overwrite``; returns it."""
    path = Path(path)
    if source is not None and path.exists() and Path(source).exists() and os.path.samefile(path, source):
        raise ConfigError(f"{path} is the input {source} itself; write to another file")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; name the file to write")
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists; pass --overwrite to replace it")
    return path


@contextmanager
def atomic_open(path, keep=None):
    """Open ``path`` for binary writing such that readers only ever see a complete file.

    Writes go to a temporary file in the same folder; on success it is flushed, fsynced and
    renamed over ``path`` (and the folder fsynced); on any error it is removed and ``path``
    keeps its old content. With ``keep`` (a path in the same folder), the old content of
    ``path`` becomes ``keep`` just before the rename; at every instant both names hold a
    complete file (see ``_keep_previous``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask_mode(fd)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if keep is not None and path.exists():
            _keep_previous(path, Path(keep))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _keep_previous(path: Path, keep: Path) -> None:
    # A second name for the old file (a hard link, else a fsynced copy) is made under a
    # temporary name and renamed onto keep: path is never missing, keep never half written.
    fd, tmp = tempfile.mkstemp(prefix=f".{keep.name}.", suffix=".tmp", dir=keep.parent)
    os.close(fd)
    try:
        try:
            os.unlink(tmp)
            os.link(path, tmp)
        except OSError:  # a filesystem without hard links
            shutil.copyfile(path, tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, keep)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_open``)."""
    with atomic_open(path) as handle:
        handle.write(data)
    return Path(path)


def npz_path(path) -> Path:
    """path as ``atomic_savez`` writes it: with ``.npz`` appended unless it ends so."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def atomic_savez(path, arrays: dict[str, np.ndarray], meta: dict, digest: bool = False, keep=None) -> Path:
    """Write arrays plus a JSON ``meta`` record to ``path`` (.npz) atomically.

    Parameters
    ----------
    digest
        also store the SHA-256 of the arrays and the record, which ``read_npz`` verifies
    keep : path, optional
        The path the file's previous version moves to (see ``atomic_open``), or None.
    """
    path = npz_path(path)
    payload = {key: np.asarray(value) for key, value in arrays.items()}
    payload[META_KEY] = np.array(json.dumps(meta))
    if digest:
        payload[DIGEST_KEY] = np.array(content_digest(payload))
    with atomic_open(path, keep=keep) as handle:
        np.savez(handle, **payload)
    return path


def content_digest(arrays: dict[str, np.ndarray]) -> str:
    """The SHA-256 (hex) of every array's name, dtype, shape and bytes, in name order (the
    digest member itself left out)."""
    sha = hashlib.sha256()
    for key in sorted(k for k in arrays if k != DIGEST_KEY):
        value = np.ascontiguousarray(arrays[key])
        sha.update(json.dumps([key, value.dtype.str, list(value.shape)]).encode())
        sha.update(value.reshape(-1).view(np.uint8))
    return sha.hexdigest()


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> None:
    """Reject a member whose header promises more data than the member holds, or an object array."""
    with archive.open(info) as handle:
        try:
            version = np.lib.format.read_magic(handle)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(handle) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(handle))
        except (ValueError, EOFError, OSError) as exc:
            raise ModelFileError(f"{path}: member {info.filename!r} is not a valid .npy array ({exc})") from None
    if dtype.hasobject:
        raise ModelFileError(f"{path}: member {info.filename!r} holds Python objects; numcnn never unpickles")
    needed = math.prod(shape) * dtype.itemsize
    if needed > info.file_size:
        raise ModelFileError(f"{path}: member {info.filename!r} claims shape {shape} of {dtype} "
                             f"({needed} bytes) but holds only {info.file_size} bytes")


def read_npz(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a numcnn .npz: (arrays by name, meta record). Raises ModelFileError for anything off."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                _check_member(archive, info, path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zipfile.LargeZipFile) as exc:
        raise ModelFileError(f"{path}: not a readable numcnn .npz file ({type(exc).__name__}: {exc})") from None
    stored = arrays.pop(DIGEST_KEY, None)
    if stored is not None and (stored.dtype.kind != "U" or stored.shape != () or str(stored) != content_digest(arrays)):
        raise ModelFileError(f"{path}: the contents do not match the SHA-256 written with them: "
                             f"the file was damaged after it was written")
    raw = arrays.pop(META_KEY, None)
    if raw is None or raw.dtype.kind != "U" or raw.shape != ():
        raise ModelFileError(f"{path}: no numcnn metadata record; was it written by numcnn?")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: metadata record is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: metadata record must be a JSON object, got {type(meta).__name__}")
    return arrays, meta
