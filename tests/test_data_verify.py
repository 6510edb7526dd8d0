"""Checking files that claim to be the official data (the cache, a system copy): sizes on every
use, md5 when a file is first seen or has changed, and the verdict remembered in the cache.

The tests make their own "official" dataset: small IDX files whose md5s and sizes they compute
with hashlib and from the bytes they wrote, installed as the dataset's published constants.
"""

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from numcnn.data import datasets, files, resolve, write_idx
from numcnn.errors import DataError


@pytest.fixture
def official(tmp_path, monkeypatch):
    """Publish four small gzipped IDX files as MNIST's official ones; return their folder."""
    monkeypatch.delenv("NUMCNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "system")

    def offline(urls, dest, md5):
        raise DataError(f"offline test: not fetching {urls}")

    monkeypatch.setattr(datasets, "fetch", offline)
    published = tmp_path / "published"
    published.mkdir()
    rng = np.random.default_rng(0)
    arrays = (rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), rng.integers(0, 10, 12, dtype=np.uint8),
              rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), rng.integers(0, 10, 6, dtype=np.uint8))
    md5s, sizes = [], []
    for stem, array in zip(datasets.FILES, arrays):
        write_idx(published / f"{stem}.gz", array)
        md5s.append(hashlib.md5((published / f"{stem}.gz").read_bytes()).hexdigest())
        sizes.append(len(gzip.decompress((published / f"{stem}.gz").read_bytes())))
    monkeypatch.setitem(datasets.OFFICIAL, "mnist",
                        datasets.Official(("https://example.invalid/",), tuple(md5s), None, tuple(sizes)))
    return published


def install(published: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in published.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def count_md5s(monkeypatch):
    calls = []
    real = files.file_md5
    monkeypatch.setattr(files, "file_md5", lambda path: calls.append(Path(path).name) or real(path))
    monkeypatch.setattr(files, "_md5_memo", {})
    return calls


def test_content_size_reads_the_gzip_trailer_and_the_raw_size(tmp_path):
    payload = bytes(range(256)) * 41
    (tmp_path / "raw").write_bytes(payload)
    (tmp_path / "packed.gz").write_bytes(gzip.compress(payload))
    assert datasets.content_size(tmp_path / "raw") == datasets.content_size(tmp_path / "packed.gz") == 10496


def test_the_published_sizes_are_the_idx_headers_plus_one_byte_per_pixel_or_label():
    for name in ("mnist", "fashion-mnist"):
        assert datasets.OFFICIAL[name].content_size == (16 + 60000 * 28 * 28, 8 + 60000,
                                                        16 + 10000 * 28 * 28, 8 + 10000)


def test_every_dataset_tries_an_https_mirror_first():
    for name, official in datasets.OFFICIAL.items():
        assert official.mirrors[0].startswith("https://"), name


def test_a_cached_file_is_md5_checked_once_then_size_checked(official, tmp_path, monkeypatch):
    cache = install(official, tmp_path / "xdg" / "numcnn" / "mnist")
    md5s = count_md5s(monkeypatch)
    assert resolve("mnist", download=False) == (cache, f"cache: {cache} (md5 verified)")
    assert sorted(md5s) == sorted(f"{stem}.gz" for stem in datasets.FILES)
    record = (tmp_path / "xdg" / "numcnn" / "verified.json").read_text()
    assert str(cache / "train-images-idx3-ubyte.gz") in record

    md5s.clear()
    monkeypatch.setattr(files, "_md5_memo", {})  # as in a new process
    assert resolve("mnist", download=False)[0] == cache
    assert md5s == [], "a file verified before, unchanged since, is not hashed again"


def test_a_cached_file_that_shrank_is_caught_by_its_size_on_the_next_use(official, tmp_path, monkeypatch):
    cache = install(official, tmp_path / "xdg" / "numcnn" / "mnist")
    resolve("mnist", download=False)
    labels = cache / "t10k-labels-idx1-ubyte.gz"
    payload = gzip.decompress(labels.read_bytes())
    labels.write_bytes(gzip.compress(payload[:-3]))
    with pytest.warns(UserWarning, match="t10k-labels"), pytest.raises(DataError) as caught:
        resolve("mnist", download=False)
    assert f"expected {len(payload)} bytes of t10k-labels-idx1-ubyte, found {len(payload) - 3}" in str(caught.value)


def test_a_changed_file_of_the_right_size_is_hashed_again_and_refused(official, tmp_path, monkeypatch):
    cache = install(official, tmp_path / "xdg" / "numcnn" / "mnist")
    resolve("mnist", download=False)
    images = cache / "train-images-idx3-ubyte.gz"
    payload = bytearray(gzip.decompress(images.read_bytes()))
    payload[100] ^= 0xFF  # one pixel: same size, other bytes
    images.write_bytes(gzip.compress(bytes(payload)))
    stat = images.stat()
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later write, whatever the clock
    md5s = count_md5s(monkeypatch)
    with pytest.warns(UserWarning, match="not the official data"), pytest.raises(DataError, match="expected the official archive"):
        resolve("mnist", download=False)
    assert "train-images-idx3-ubyte.gz" in md5s


def test_a_download_replaces_a_wrong_cached_file(official, tmp_path, monkeypatch):
    cache = install(official, tmp_path / "xdg" / "numcnn" / "mnist")
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"not the labels"))
    fetched = []

    def mirror(urls, dest, md5):
        fetched.append(Path(dest).name)
        Path(dest).write_bytes((official / Path(dest).name).read_bytes())

    monkeypatch.setattr(datasets, "fetch", mirror)
    with pytest.warns(UserWarning, match="train-labels"):
        directory, source = resolve("mnist")
    assert directory == cache and "just downloaded" in source
    assert fetched == ["train-labels-idx1-ubyte.gz"]
    assert (cache / "train-labels-idx1-ubyte.gz").read_bytes() == (official / "train-labels-idx1-ubyte.gz").read_bytes()


def test_a_system_copy_is_verified_too_and_remembered_in_the_cache(official, tmp_path, monkeypatch):
    system = install(official, tmp_path / "system" / "mnist")
    md5s = count_md5s(monkeypatch)
    assert resolve("mnist", download=False) == (system, f"system copy: {system} (md5 verified)")
    assert len(md5s) == 4
    md5s.clear()
    monkeypatch.setattr(files, "_md5_memo", {})
    resolve("mnist", download=False)
    assert md5s == []
