"""download() against a local HTTP server on 127.0.0.1: mirrors, checksums, no partial files."""

import gzip
import hashlib
import http.server
import socket
import threading
import time
from functools import partial

import numpy as np
import pytest

from numcnn.data import datasets, load, resolve
from numcnn.data.download import download
from numcnn.errors import DataError
from test_data_datasets import make_folder

PAYLOAD = bytes(range(256)) * 400  # 100 kB, several read chunks
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder, plus two broken paths: /cut (body cut short) and /slow."""

    def do_GET(self):
        if self.path == "/cut":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.close_connection = True
            return
        if self.path == "/slow":
            time.sleep(1.0)
        super().do_GET()

    def log_message(self, *args):  # keep the test output quiet
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the /slow client gives up on purpose, so writing its answer fails: not news


@pytest.fixture
def server(tmp_path):
    """(base url, served folder) of an HTTP server running in a thread for one test."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "file.bin").write_bytes(PAYLOAD)
    httpd = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def refused_url():
    """A url on a port nobody listens on: the connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def _only(folder, name):
    """The folder holds exactly name (no leftover temporary files)."""
    return sorted(p.name for p in folder.iterdir()) == [name]


def test_success(server, tmp_path):
    url, _ = server
    dest = tmp_path / "out" / "file.bin"
    assert download(url + "file.bin", dest, PAYLOAD_MD5) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _only(dest.parent, "file.bin")


def test_falls_back_to_the_next_mirror(server, refused_url, tmp_path):
    url, _ = server
    dest = tmp_path / "out" / "file.bin"
    download([refused_url, url + "missing.bin", url + "cut", url + "file.bin"], dest, PAYLOAD_MD5)
    assert dest.read_bytes() == PAYLOAD
    assert _only(dest.parent, "file.bin")


def test_all_mirrors_failing_lists_every_attempt(server, refused_url, tmp_path):
    url, _ = server
    dest = tmp_path / "out" / "file.bin"
    urls = [refused_url, url + "missing.bin", url + "slow"]
    with pytest.raises(DataError) as info:
        download(urls, dest, PAYLOAD_MD5, timeout=0.2)
    message = str(info.value)
    for attempt in urls:
        assert attempt in message
    assert "404" in message and "file.bin" in message
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_md5_mismatch_names_both_hashes_and_leaves_nothing(server, tmp_path):
    url, _ = server
    dest = tmp_path / "out" / "file.bin"
    wrong = "0123456789abcdef0123456789abcdef"
    with pytest.raises(DataError) as info:
        download(url + "file.bin", dest, wrong)
    assert wrong in str(info.value) and PAYLOAD_MD5 in str(info.value)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_cut_download_never_replaces_an_existing_file(server, tmp_path):
    url, _ = server
    dest = tmp_path / "out" / "file.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(DataError):
        download(url + "cut", dest, PAYLOAD_MD5)
    assert dest.read_bytes() == b"old"
    assert _only(dest.parent, "file.bin")


def test_existing_good_file_is_not_fetched_again(tmp_path, refused_url):
    dest = tmp_path / "file.bin"
    dest.write_bytes(PAYLOAD)
    assert download(refused_url, dest, PAYLOAD_MD5.upper()) == dest


def test_load_downloads_into_the_cache_end_to_end(server, refused_url, tmp_path, monkeypatch):
    url, served = server
    train_x, train_y, _, _ = make_folder(served, n_train=12, n_test=6, gz=True)
    archives = [(served / f"{stem}.gz").read_bytes() for stem in datasets.FILES]
    official = datasets.Official(mirrors=(refused_url.removesuffix("file.bin"), url),
                                 archive_md5=tuple(hashlib.md5(archive).hexdigest() for archive in archives),
                                 content_md5=None,
                                 content_size=tuple(len(gzip.decompress(archive)) for archive in archives))
    monkeypatch.setitem(datasets.OFFICIAL, "mnist", official)
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "no-system")
    monkeypatch.delenv("NUMCNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    (x_train, y_train), (x_test, _) = load("mnist")
    cache = tmp_path / "xdg" / "numcnn" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{stem}.gz" for stem in datasets.FILES)
    np.testing.assert_array_equal(y_train, train_y)
    np.testing.assert_array_equal(x_train[:, 0], train_x / np.float32(255))
    assert x_test.shape == (6, 1, 28, 28)
    assert resolve("mnist") == (cache, f"cache: {cache} (md5 verified)")  # found, not fetched again
