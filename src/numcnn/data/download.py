"""Fetching a file from a list of mirrors, checked by md5, never leaving a partial file behind.

The file is streamed into a temporary file in the destination folder, flushed to disk,
checked, and only then renamed over the destination. ``os.replace`` within one folder is
atomic, so whoever looks at ``dest`` sees either nothing, the old file, or the complete
checked new one, even if the process is killed half-way through a download.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Sequence

from ..errors import DataError
from ..io import umask_mode

logger = logging.getLogger(__name__)

_CHUNK = 1 << 16
TIMEOUT_S = 30.0


def file_md5(path: str | os.PathLike) -> str:
    """Hex md5 of a file's bytes, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, tmp, timeout: float) -> str:
    """Stream url into the open file tmp; return the md5 of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            digest.update(chunk)
            tmp.write(chunk)
    tmp.flush()
    os.fsync(tmp.fileno())
    return digest.hexdigest()


def download(urls: str | Sequence[str], dest: str | os.PathLike, md5: str,
             timeout: float = TIMEOUT_S) -> Path:
    """Download the first working url of urls to dest, verifying its md5.

    Parameters
    ----------
    urls : str or sequence of str
        One url, or mirrors of the same file to try in order.
    dest
        final file name; its folder is created if needed. If dest already exists with
        the right md5 nothing is fetched.
    md5 : str
        The expected hex md5 of the file.
    timeout : float
        Seconds to wait on connecting and on each read.

    Returns
    -------
    Path
        dest.

    Raises
    ------
    DataError
        When no mirror delivers the file: network errors and checksum mismatches (with the
        expected and the received md5) are listed per url. A mirror serving wrong bytes is
        skipped like an unreachable one, since another mirror may still be good.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = Path(dest)
    md5 = md5.lower()
    if not urls:
        raise DataError(f"download({dest.name}): expected at least one url, got none")
    if dest.is_file() and file_md5(dest) == md5:
        return dest

    attempts = []
    for url in urls:
        logger.info("downloading %s -> %s", url, dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            # Same folder as dest, so that os.replace is a rename, not a copy across file systems.
            tmp = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part",
                                              delete=False)
        except OSError as exc:
            raise DataError(f"cannot write {dest.name} into {dest.parent}: {exc}") from exc
        try:
            with tmp:
                umask_mode(tmp.fileno())
                got = _fetch(url, tmp, timeout)
            if got != md5:
                attempts.append(f"{url}: md5 mismatch: expected {md5}, got {got}")
                continue
            os.replace(tmp.name, dest)
            return dest
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # OSError covers URLError, HTTPError, timeouts and refused connections; HTTPException
            # a connection cut mid-body; ValueError a malformed url.
            attempts.append(f"{url}: {type(exc).__name__}: {exc}")
        finally:
            if os.path.exists(tmp.name):
                os.unlink(tmp.name)
    tried = "\n  ".join(attempts)
    raise DataError(f"could not download {dest.name} (md5 {md5}) into {dest.parent}; tried:\n  {tried}")
