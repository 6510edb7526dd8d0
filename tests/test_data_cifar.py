"""CIFAR-10 and CIFAR-100 from their binary files, written here byte by byte in the published
layout (label byte(s), then 1024 red, 1024 green, 1024 blue bytes, each plane row-major):
bit-exact loading, partial records, missing files, class names, coarse labels, the archive,
an offline download from a local server, and a training run from the command line."""

import hashlib
import io
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from numcnn import cli, data
from numcnn.data import datasets, load, resolve
from numcnn.errors import ConfigError, DataError
from numcnn.model import read_model
from test_data_download import server  # noqa: F401  (a fixture: an HTTP server on 127.0.0.1)

CIFAR10_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def records(pictures: np.ndarray, *labels: np.ndarray) -> bytes:
    """The published layout: per picture its label bytes, then its R, G and B planes.

    pictures: (N, 32, 32, 3) uint8, as a photo is usually held (rows, columns, RGB).
    """
    out = bytearray()
    for i, picture in enumerate(pictures):
        out += bytes(int(label[i]) for label in labels)
        for channel in range(3):
            out += picture[:, :, channel].tobytes()  # 1024 bytes, row after row
    return bytes(out)


def write_cifar10(folder: Path, counts=(3, 0, 2, 1, 4, 3), seed=0, classes=10):
    """One batch file per count (five training, one test); returns the (N, 3, 32, 32) pictures
    and labels the files hold, training then test."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for name, n in zip(CIFAR10_FILES, counts):
        pictures = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, classes, n, dtype=np.uint8)
        (folder / name).write_bytes(records(pictures, labels))
        written.append((pictures.transpose(0, 3, 1, 2), labels))
    train = (np.concatenate([p for p, _ in written[:5]]), np.concatenate([lab for _, lab in written[:5]]))
    return train, written[5]


def write_cifar100(folder: Path, n_train=5, n_test=3, seed=1):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for name, n in (("train.bin", n_train), ("test.bin", n_test)):
        pictures = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        fine = rng.integers(0, 100, n, dtype=np.uint8)
        coarse = fine // 5
        (folder / name).write_bytes(records(pictures, coarse, fine))
        out[name] = (pictures.transpose(0, 3, 1, 2), fine, coarse)
    return out


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real env var, cache, system copy or network."""
    monkeypatch.delenv("NUMCNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "system")


def test_cifar10_loads_bit_exactly_from_files_of_any_whole_number_of_records(tmp_path):
    (x, y), (x_test, y_test) = write_cifar10(tmp_path / "c10")
    (got, got_y), (got_test, got_test_y) = load("cifar10", data_dir=tmp_path / "c10", dtype=None)
    assert got.dtype == np.uint8 and got.shape == (10, 3, 32, 32) and got_y.dtype == np.int64
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(got_y, y)
    np.testing.assert_array_equal(got_test, x_test)
    np.testing.assert_array_equal(got_test_y, y_test)
    (as_float, _), _ = load("CIFAR-10", data_dir=tmp_path / "c10")  # an alias; float32 by default
    assert as_float.dtype == np.float32
    np.testing.assert_array_equal(as_float, x.astype(np.float32) / np.float32(255))


def test_a_partial_record_names_the_file_and_the_bytes_left_over(tmp_path):
    write_cifar10(tmp_path / "c10")
    path = tmp_path / "c10" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes() + b"\x01" * 100)
    with pytest.raises(DataError, match=r"data_batch_3\.bin: 6246 bytes is not a whole number of 3073-byte "
                                        r"records \(2 records and 100 bytes of a partial one\)"):
        load("cifar10", data_dir=tmp_path / "c10")


def test_a_missing_file_is_named(tmp_path):
    write_cifar10(tmp_path / "c10")
    (tmp_path / "c10" / "test_batch.bin").unlink()
    with pytest.raises(DataError, match="test_batch.bin") as info:
        load("cifar10", data_dir=tmp_path / "c10")
    assert str(tmp_path / "c10") in str(info.value)


def test_a_label_outside_the_classes_names_the_file_and_record(tmp_path):
    write_cifar10(tmp_path / "c10", counts=(2, 2, 2, 2, 2, 2), classes=10)
    path = tmp_path / "c10" / "data_batch_2.bin"
    raw = bytearray(path.read_bytes())
    raw[3073] = 10  # the label byte of the second record
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"data_batch_2\.bin: record 1 has label 10; expected 0\.\.9"):
        load("cifar10", data_dir=tmp_path / "c10")


def test_class_names_come_from_the_meta_file_when_there_is_one(tmp_path):
    write_cifar10(tmp_path / "c10")
    assert data.prepare("cifar10", tmp_path / "c10")[0].classes[:2] == ("airplane", "automobile")
    names = [f"thing {i}" for i in range(10)]
    (tmp_path / "c10" / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    assert list(data.prepare("cifar10", tmp_path / "c10")[0].classes) == names


def test_cifar100_fine_by_default_and_coarse_on_request(tmp_path):
    written = write_cifar100(tmp_path / "c100")
    (tmp_path / "c100" / "coarse_label_names.txt").write_text("\n".join(f"super {i}" for i in range(20)))
    (x, y), (x_test, y_test) = load("cifar100", data_dir=tmp_path / "c100", dtype=None)
    np.testing.assert_array_equal(x, written["train.bin"][0])
    np.testing.assert_array_equal(y, written["train.bin"][1])
    np.testing.assert_array_equal(y_test, written["test.bin"][1])
    (_, y), (_, y_test) = load("cifar100", data_dir=tmp_path / "c100", labels="coarse")
    np.testing.assert_array_equal(y, written["train.bin"][2])
    described = data.prepare("cifar100", tmp_path / "c100", labels="coarse")[0]
    assert described.num_classes == 20 and described.classes[0] == "super 0"
    assert data.prepare("cifar100", tmp_path / "c100")[0].classes[:2] == ("apple", "aquarium_fish")
    with pytest.raises(ConfigError, match="fine, coarse"):
        load("cifar100", data_dir=tmp_path / "c100", labels="middle")
    with pytest.raises(ConfigError, match="cifar100"):
        load("cifar10", data_dir=tmp_path / "c100", labels="coarse")


def _archive(folder: Path, inner: str, extra: dict | None = None) -> bytes:
    """A .tar.gz holding folder's files under inner/ (plus extra members: name -> bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=f"{inner}/{path.name}")
        for name, payload in (extra or {}).items():
            member = tarfile.TarInfo(name)
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
    return buffer.getvalue()


def _publish(monkeypatch, archive: bytes, urls=("https://example.invalid/",)):
    """Make archive the official cifar-10-binary.tar.gz, with its md5 and the sizes of its files."""
    described = datasets.REGISTRY["cifar10"]
    sizes = {name: 0 for name in CIFAR10_FILES}
    official = replace(described.official, urls=tuple(urls), md5=hashlib.md5(archive).hexdigest(), sizes=sizes)
    monkeypatch.setitem(datasets.REGISTRY, "cifar10", replace(described, official=official))
    return official


def test_a_folder_holding_the_archive_is_extracted_once_and_only_its_data(tmp_path, monkeypatch):
    (x, y), _ = write_cifar10(tmp_path / "files")
    archive = _archive(tmp_path / "files", "cifar-10-batches-bin",
                       extra={"../evil.bin": b"x", "cifar-10-batches-bin/../../evil2.bin": b"x"})
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "cifar-10-binary.tar.gz").write_bytes(archive)
    _publish(monkeypatch, archive)
    (got, got_y), _ = load("cifar10", data_dir=folder, dtype=None)
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(got_y, y)
    assert sorted(p.name for p in (folder / "cifar-10-batches-bin").iterdir()) == sorted(CIFAR10_FILES)
    assert not (tmp_path / "evil.bin").exists() and not (folder / "evil2.bin").exists()
    assert resolve("cifar10", folder)[0] == folder / "cifar-10-batches-bin"  # found, not extracted again


def test_an_archive_that_is_not_the_official_one_is_refused(tmp_path, monkeypatch):
    write_cifar10(tmp_path / "files")
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "cifar-10-binary.tar.gz").write_bytes(_archive(tmp_path / "files", "cifar-10-batches-bin"))
    with pytest.raises(DataError, match="not the official cifar-10-binary.tar.gz .*c32a1d4ab5d03f1284b67883e8d87530"):
        load("cifar10", data_dir=folder)


def test_downloaded_from_a_mirror_into_the_cache_then_found_there(tmp_path, monkeypatch, server):  # noqa: F811
    url, served = server
    (x, y), (x_test, _) = write_cifar10(tmp_path / "files")
    archive = _archive(tmp_path / "files", "cifar-10-batches-bin")
    (served / "cifar-10-binary.tar.gz").write_bytes(archive)
    official = _publish(monkeypatch, archive, urls=(url,))
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "files").iterdir()}
    monkeypatch.setitem(datasets.REGISTRY, "cifar10",
                        replace(datasets.REGISTRY["cifar10"], official=replace(official, sizes=sizes)))
    (got, got_y), (got_test, _) = load("cifar10", dtype=None)
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(got_test, x_test)
    cache = tmp_path / "xdg" / "numcnn" / "cifar10" / "cifar-10-batches-bin"
    assert resolve("cifar10") == (cache, f"cache: {cache} (md5 verified)")
    (cache / "data_batch_1.bin").write_bytes(b"\0" * 3073)  # a cache file of the wrong size is not used
    with pytest.warns(UserWarning, match="data_batch_1.bin: expected 9219 bytes, found 3073"):
        with pytest.raises(DataError):
            resolve("cifar10", download=False)


def test_trains_from_the_command_line_and_refuses_options_it_does_not_take(tmp_path, capsys):
    write_cifar10(tmp_path / "c10", counts=(20, 20, 20, 20, 20, 20))
    out = tmp_path / "run"
    status = cli.main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "c10"), "--model", "cifar-resnet",
                       "--width", "2", "--epochs", "1", "--batch-size", "50", "--augment", "--jitter", "0.2",
                       "--no-plots", "--no-progress", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    assert "100 training images, 20 test images" in stdout
    model, training = read_model(out)  # the model file records what predict needs without the data
    assert model.input_shape == (3, 32, 32) and type(model[0]).__name__ == "Normalize"
    assert training["classes"][:2] == ["airplane", "automobile"] and training["normalize"] is True
    for flags, message in ((["--labels", "coarse"], "labels: only cifar100"),
                           (["--image-size", "16"], "image_size: for image folders only")):
        status = cli.main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "c10"), *flags,
                           "--out", str(tmp_path / "other")])
        _, err = capsys.readouterr()
        assert status == 2 and err.startswith("error: ") and message in err, err


def test_found_through_numcnn_data_in_the_archives_own_subfolder(tmp_path, monkeypatch):
    (x, _), _ = write_cifar10(tmp_path / "env" / "cifar10" / "cifar-10-batches-bin")
    write_cifar100(tmp_path / "env" / "cifar-100" / "cifar-100-binary")  # an alias's folder works too
    monkeypatch.setenv("NUMCNN_DATA", str(tmp_path / "env"))
    folder, source = resolve("cifar10")
    assert folder == tmp_path / "env" / "cifar10" / "cifar-10-batches-bin"
    assert source == f"$NUMCNN_DATA: {folder}"
    np.testing.assert_array_equal(load("cifar10", dtype=None)[0][0], x)
    assert resolve("cifar100")[0] == tmp_path / "env" / "cifar-100" / "cifar-100-binary"
