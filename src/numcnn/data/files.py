"""Dataset files on disk: the cache, finding a file raw or gzipped, md5s and sizes, and the record
of files already verified. Nothing here knows which datasets exist (``datasets`` does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from pathlib import Path

from ..io import atomic_write_bytes
from .download import file_md5
from .idx import GZIP_MAGIC, open_payload

logger = logging.getLogger(__name__)
VERIFIED = "verified.json"  # in the cache root: official files whose md5 passed, by path


def cache_root() -> Path:
    """$XDG_CACHE_HOME/numcnn, default ~/.cache/numcnn."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative path here.
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "numcnn"


def find_file(directory: Path, stem: str) -> Path | None:
    """The file stem or stem.gz in directory; the raw one first, it is faster to read."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing(directory: Path, files) -> list[str]:
    """The stems of files that directory holds neither raw nor gzipped."""
    return [stem for stem in files if find_file(directory, stem) is None]


def describe_missing(directory: Path, files, gz: bool = True) -> str:
    """Why directory does not hold files: it does not exist, or which ones it lacks
    (gz: a file may also be there gzipped, as the IDX files may; CIFAR's may not)."""
    if directory.exists() and not directory.is_dir():
        return f"{directory} is a file, not a folder"
    if not directory.is_dir():
        return f"{directory} does not exist"
    if not gz:
        return f"{directory} lacks {', '.join(stem for stem in files if not (directory / stem).is_file())}"
    return f"{directory} lacks {', '.join(f'{stem}[.gz]' for stem in missing(directory, files))}"



# md5s by (path, size, mtime, of what): checking a system copy costs ~0.5 s, mostly decompressing,
# so resolve() followed by load() in one process pays it once.
_md5_memo: dict[tuple[str, int, int, str], str] = {}


def md5(path: Path, decompressed: bool) -> str:
    """md5 of the file's bytes, or of its decompressed bytes (same thing for a raw file)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, "content" if decompressed else "file")
    if key not in _md5_memo:
        if not decompressed:
            _md5_memo[key] = file_md5(path)
        else:
            digest = hashlib.md5(usedforsecurity=False)
            with open_payload(path) as (stream, _):
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
            _md5_memo[key] = digest.hexdigest()
    return _md5_memo[key]


def content_size(path: Path) -> int:
    """The decompressed size of a file without decompressing it: a raw file's size, or for a
    gzip file the length its last four bytes record (modulo 2**32, as gzip stores it)."""
    with open(path, "rb") as f:
        if f.read(2) != GZIP_MAGIC:
            return os.fstat(f.fileno()).st_size
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def read_verified() -> dict:
    try:
        record = json.loads((cache_root() / VERIFIED).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_verified(record: dict) -> None:
    # Only a memo: when it cannot be written (a read-only home), the md5 is checked next time.
    try:
        atomic_write_bytes(cache_root() / VERIFIED, (json.dumps(record, indent=1) + "\n").encode())
    except OSError as exc:
        logger.info("could not record verified files in %s: %s", cache_root(), exc)
