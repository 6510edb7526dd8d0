"""load() and resolve(): the lookup order, the checks on the data, and the bundled sample."""

import dataclasses
import gzip
import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from numcnn.data import CLASS_NAMES, DATASETS, class_names, load, read_idx, resolve, write_idx
from numcnn.data import datasets, files
from numcnn.data.download import file_md5
from numcnn.errors import DataError

REPO = Path(__file__).resolve().parents[1]
SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_system_fashion = pytest.mark.skipif(
    not SYSTEM_FASHION.is_dir(), reason=f"needs Debian's dataset-fashion-mnist in {SYSTEM_FASHION}")

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# The published md5s of the .gz archives, in the order train-images, train-labels, t10k-images,
# t10k-labels: Fashion-MNIST's from its README (zalandoresearch/fashion-mnist), MNIST's as torchvision
# lists them for its mirrors.
FASHION_ARCHIVE_MD5 = ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                       "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")
MNIST_ARCHIVE_MD5 = ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                     "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")
# md5 of the decompressed Fashion-MNIST files (`zcat FILE.gz | md5sum` on Debian's copy, which is
# recompressed, so its archive md5s differ from the published ones).
FASHION_CONTENT_MD5 = ("f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
                       "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965")
# The shipped sample (src/numcnn/data/sample), by `md5sum` and `zcat | md5sum` at the time of writing.
SAMPLE_ARCHIVE_MD5 = ("bc94019ff5cfe9670249ed752848a78e", "18f19401c6f830321e7c271deec398a6",
                      "2a29881e3ecb81c847c078a7013f1cc2", "d21d529880c1d3990ccc4942f049fa71")
SAMPLE_CONTENT_MD5 = ("b4516737d2b2472ba4fa38f9d20910dc", "0e188f98303a945799e3d08c88c05380",
                      "20e82c2a34d530ca022b0d53277a2a6e", "c948c9f9c2be9a569dae2331a1fb96c7")
# Decompressed IDX sizes: a 16-byte header and 28*28 bytes per image, or an 8-byte header and a
# byte per label; the sample has 6000 + 1000 images, the full sets 60000 + 10000.
SAMPLE_CONTENT_SIZE = (16 + 6000 * 784, 8 + 6000, 16 + 1000 * 784, 8 + 1000)
FULL_CONTENT_SIZE = (16 + 60000 * 784, 8 + 60000, 16 + 10000 * 784, 8 + 10000)


def make_folder(folder, n_train=20, n_test=10, gz=False, seed=0):
    """Write a small fake dataset (the 4 standard files) into folder; return its arrays.

    Returns (train_images (n_train, 28, 28) uint8, train_labels (n_train,) uint8, test_images, test_labels).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8))
    for stem, array in zip(datasets.FILES, arrays):
        write_idx(folder / (stem + ".gz" if gz else stem), array)
    return arrays


def declare_official(monkeypatch, name, folder, by_content=False):
    """Make the 4 files in folder the "official" name: their md5s and decompressed sizes, taken
    with hashlib and gzip from the bytes on disk (not with numcnn's hasher). by_content: only the
    md5 of the decompressed bytes matches, as for a recompressed copy."""
    archives, contents = [], []
    for stem in datasets.FILES:
        path = folder / stem if (folder / stem).is_file() else folder / f"{stem}.gz"
        archives.append(path.read_bytes())
        contents.append(gzip.decompress(archives[-1]) if path.suffix == ".gz" else archives[-1])
    md5 = [hashlib.md5(b).hexdigest() for b in (contents if by_content else archives)]
    monkeypatch.setitem(datasets.OFFICIAL, name, datasets.Official(
        mirrors=datasets.OFFICIAL[name].mirrors, archive_md5=("0" * 32,) * 4 if by_content else tuple(md5),
        content_md5=tuple(md5) if by_content else None, content_size=tuple(len(c) for c in contents)))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real env var, cache, system copy or network: each test builds the world it needs."""
    monkeypatch.delenv("NUMCNN_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "system")

    def offline(urls, dest, md5):
        raise DataError(f"offline test: not fetching {urls}")
    monkeypatch.setattr(datasets, "fetch", offline)


# --- loading a folder --------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_load_from_data_dir(tmp_path, gz):
    train_x, train_y, test_x, test_y = make_folder(tmp_path / "d", gz=gz)
    (x_train, y_train), (x_test, y_test) = load("mnist", data_dir=tmp_path / "d")
    assert x_train.shape == (20, 1, 28, 28) and x_test.shape == (10, 1, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    np.testing.assert_array_equal(x_train[:, 0], train_x.astype(np.float32) / 255)
    np.testing.assert_array_equal(y_train, train_y)
    np.testing.assert_array_equal(x_test[:, 0], test_x.astype(np.float32) / 255)
    np.testing.assert_array_equal(y_test, test_y)


def test_folder_may_mix_raw_and_gz(tmp_path):
    make_folder(tmp_path / "d", gz=True)
    raw = tmp_path / "d" / "train-images-idx3-ubyte"
    write_idx(raw, read_idx(str(raw) + ".gz"))
    (tmp_path / "d" / "train-images-idx3-ubyte.gz").unlink()
    (x_train, _), _ = load("fashion_mnist", data_dir=tmp_path / "d")
    assert x_train.shape == (20, 1, 28, 28)


def test_data_dir_without_files_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    make_folder(tmp_path / "env")  # a valid alternative exists, and must not be used
    monkeypatch.setenv("NUMCNN_DATA", str(tmp_path / "env"))
    make_folder(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as info:
        resolve("mnist", data_dir=tmp_path / "partial")
    assert str(tmp_path / "partial") in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        load("mnist", data_dir=tmp_path / "nowhere")


def _write_split(folder, images, labels, prefix="train"):
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)


def test_count_mismatch(tmp_path):
    make_folder(tmp_path)
    _write_split(tmp_path, np.zeros((5, 28, 28), np.uint8), np.zeros(4, np.uint8), prefix="t10k")
    with pytest.raises(DataError, match="5 images .* 4 labels"):
        load("mnist", data_dir=tmp_path)


@pytest.mark.parametrize("labels", [np.array([0, 10, 3], np.uint8), np.array([0, -1, 3], np.int8)])
def test_labels_out_of_range(tmp_path, labels):
    make_folder(tmp_path)
    _write_split(tmp_path, np.zeros((3, 28, 28), np.uint8), labels)
    with pytest.raises(DataError, match=r"labels in 0\.\.9") as info:
        load("mnist", data_dir=tmp_path)
    assert "train-labels-idx1-ubyte" in str(info.value)


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((3, 27, 28), np.uint8), np.zeros(3, np.uint8), r"\(N, 28, 28\)"),
    (np.zeros((3, 28, 28), np.float32), np.zeros(3, np.uint8), "uint8 images"),
    (np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), r"\(N, 28, 28\)"),
    (np.zeros((3, 28, 28), np.uint8), np.zeros((3, 1), np.uint8), "integer labels"),
])
def test_wrong_shapes_and_dtypes(tmp_path, images, labels, message):
    make_folder(tmp_path)
    _write_split(tmp_path, images, labels)
    with pytest.raises(DataError, match=message):
        load("mnist", data_dir=tmp_path)


def test_corrupt_file_in_folder_names_it(tmp_path):
    make_folder(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load("mnist", data_dir=tmp_path)


# --- names -------------------------------------------------------------------------------------

def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DataError) as info:
        load("imagenet")
    for name in DATASETS:
        assert name in str(info.value)
    with pytest.raises(DataError):
        resolve(None)


def test_class_names():
    assert class_names("mnist") == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert class_names("fashion_mnist") == class_names("fashion-mnist") == FASHION_CLASSES
    assert class_names("sample") == FASHION_CLASSES
    class_names("mnist").append("oops")  # a copy: the table stays intact
    assert len(CLASS_NAMES["mnist"]) == 10


# --- lookup order ------------------------------------------------------------------------------

def test_lookup_order(tmp_path, monkeypatch):
    given, env, cache = tmp_path / "given", tmp_path / "env", tmp_path / "xdg" / "numcnn" / "mnist"
    make_folder(given, n_train=3)
    make_folder(env / "mnist", n_train=4)
    make_folder(cache, n_train=5)
    declare_official(monkeypatch, "mnist", cache)
    monkeypatch.setenv("NUMCNN_DATA", str(env))

    def n_train(**kwargs):
        return len(load("mnist", **kwargs)[0][0])

    assert resolve("mnist", data_dir=given) == (given, f"data_dir argument: {given}")
    assert n_train(data_dir=given) == 3
    assert resolve("mnist")[0] == env / "mnist" and "NUMCNN_DATA" in resolve("mnist")[1]
    assert n_train() == 4
    monkeypatch.delenv("NUMCNN_DATA")
    assert resolve("mnist") == (cache, f"cache: {cache} (md5 verified)")
    assert n_train() == 5


def test_env_var_may_point_at_the_folder_itself(tmp_path, monkeypatch):
    make_folder(tmp_path / "flat", gz=True)
    monkeypatch.setenv("NUMCNN_DATA", str(tmp_path / "flat"))
    assert resolve("fashion-mnist")[0] == tmp_path / "flat"


def test_env_var_accepts_the_underscore_folder_name(tmp_path, monkeypatch):
    make_folder(tmp_path / "env" / "fashion_mnist")
    monkeypatch.setenv("NUMCNN_DATA", str(tmp_path / "env"))
    assert resolve("fashion-mnist")[0] == tmp_path / "env" / "fashion_mnist"


def test_env_var_without_this_dataset_falls_through_to_the_cache(tmp_path, monkeypatch):
    make_folder(tmp_path / "env" / "mnist")
    make_folder(tmp_path / "xdg" / "numcnn" / "fashion-mnist")
    declare_official(monkeypatch, "fashion-mnist", tmp_path / "xdg" / "numcnn" / "fashion-mnist")
    monkeypatch.setenv("NUMCNN_DATA", str(tmp_path / "env"))
    assert resolve("fashion-mnist")[0] == tmp_path / "xdg" / "numcnn" / "fashion-mnist"


def test_cache_defaults_to_home_without_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    make_folder(tmp_path / "home" / ".cache" / "numcnn" / "mnist")
    declare_official(monkeypatch, "mnist", tmp_path / "home" / ".cache" / "numcnn" / "mnist")
    assert resolve("mnist")[0] == tmp_path / "home" / ".cache" / "numcnn" / "mnist"


def test_nothing_found_lists_every_place_tried(tmp_path):
    with pytest.raises(DataError) as info:
        resolve("mnist")
    message = str(info.value)
    for place in ("NUMCNN_DATA", str(tmp_path / "xdg" / "numcnn" / "mnist"), "system copy", "offline test"):
        assert place in message
    with pytest.raises(DataError, match="download=False"):
        resolve("mnist", download=False)


# --- system copies: verified by md5 ------------------------------------------------------------

def test_official_checksums_are_the_published_ones():
    assert datasets.OFFICIAL["fashion-mnist"].archive_md5 == FASHION_ARCHIVE_MD5
    assert datasets.OFFICIAL["fashion-mnist"].content_md5 == FASHION_CONTENT_MD5
    assert datasets.OFFICIAL["mnist"].archive_md5 == MNIST_ARCHIVE_MD5
    assert datasets.OFFICIAL["mnist"].content_md5 is None
    assert datasets.OFFICIAL["mnist"].content_size == datasets.OFFICIAL["fashion-mnist"].content_size \
        == FULL_CONTENT_SIZE
    assert set(datasets.OFFICIAL) == {"mnist", "fashion-mnist"}


def _hashlib_md5s(folder, decompressed):
    """md5 of each of the 4 .gz files in folder (or of its decompressed bytes), by hashlib and gzip."""
    read = gzip.decompress if decompressed else bytes
    return tuple(hashlib.md5(read((Path(folder) / f"{stem}.gz").read_bytes())).hexdigest()
                 for stem in datasets.FILES)


def test_sample_files_have_their_known_md5s_and_sizes():
    """numcnn's hashers against literals, on files that ship with it: this always runs."""
    for i, stem in enumerate(datasets.FILES):
        path = datasets.SAMPLE_DIR / f"{stem}.gz"
        assert datasets.content_size(path) == SAMPLE_CONTENT_SIZE[i]
        assert file_md5(path) == SAMPLE_ARCHIVE_MD5[i]
        assert files.md5(path, decompressed=False) == SAMPLE_ARCHIVE_MD5[i]
        assert files.md5(path, decompressed=True) == SAMPLE_CONTENT_MD5[i]
    assert _hashlib_md5s(datasets.SAMPLE_DIR, decompressed=False) == SAMPLE_ARCHIVE_MD5
    assert _hashlib_md5s(datasets.SAMPLE_DIR, decompressed=True) == SAMPLE_CONTENT_MD5


def _sample_as_system_copy(tmp_path, monkeypatch, archive_md5, content_md5):
    """The shipped sample copied to the fake system root, declared official with the given md5s."""
    system = tmp_path / "system" / "fashion-mnist"
    shutil.copytree(datasets.SAMPLE_DIR, system)
    monkeypatch.setitem(datasets.OFFICIAL, "fashion-mnist", datasets.Official(
        mirrors=(), archive_md5=archive_md5, content_md5=content_md5, content_size=SAMPLE_CONTENT_SIZE))
    return system


@pytest.mark.parametrize("archive_md5, content_md5", [
    (("0" * 32,) * 4, SAMPLE_CONTENT_MD5),   # recompressed, as Debian did: the content md5 decides
    (SAMPLE_ARCHIVE_MD5, None),              # the archives byte for byte; no content md5 known
], ids=["content md5", "archive md5"])
def test_system_copy_with_the_right_checksums_is_used(tmp_path, monkeypatch, archive_md5, content_md5):
    system = _sample_as_system_copy(tmp_path, monkeypatch, archive_md5, content_md5)
    assert datasets.verify_checksums("fashion-mnist", system) == []
    directory, source = resolve("fashion-mnist")
    assert directory == system and source == f"system copy: {system} (md5 verified)"


def test_system_copy_with_one_wrong_checksum_names_that_file(tmp_path, monkeypatch):
    content = SAMPLE_CONTENT_MD5[:2] + ("0" * 32,) + SAMPLE_CONTENT_MD5[3:]
    system = _sample_as_system_copy(tmp_path, monkeypatch, ("0" * 32,) * 4, content)
    problems = datasets.verify_checksums("fashion-mnist", system)
    assert problems == [f"{system / 't10k-images-idx3-ubyte.gz'}: expected decompressed md5 {'0' * 32}, "
                        f"got {SAMPLE_CONTENT_MD5[2]}"]


@pytest.mark.parametrize("by_content", [False, True], ids=["archive md5", "content md5"])
def test_system_copy_written_here_is_checked_by_its_hashlib_md5s(tmp_path, monkeypatch, by_content):
    """Files this test writes: their expected md5s come from hashlib and gzip, not from numcnn."""
    system = tmp_path / "system" / "mnist"
    make_folder(system, gz=True)
    declare_official(monkeypatch, "mnist", system, by_content)
    assert resolve("mnist") == (system, f"system copy: {system} (md5 verified)")


def test_a_verified_file_is_not_hashed_again_until_it_changes(tmp_path, monkeypatch):
    system = tmp_path / "system" / "mnist"
    make_folder(system, gz=True)
    declare_official(monkeypatch, "mnist", system)
    assert datasets.verify_checksums("mnist", system) == []
    assert (tmp_path / "xdg" / "numcnn" / "verified.json").is_file()
    hashed = []
    real_md5 = files.md5
    monkeypatch.setattr(files, "md5", lambda path, decompressed: hashed.append(path.name) or
                        real_md5(path, decompressed))
    assert datasets.verify_checksums("mnist", system) == []
    assert hashed == []
    path = system / "t10k-labels-idx1-ubyte.gz"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the same bytes, touched a second later
    assert datasets.verify_checksums("mnist", system) == []
    assert hashed == ["t10k-labels-idx1-ubyte.gz"]


@pytest.mark.parametrize("place", ["system", "cache"])
def test_a_copy_of_the_wrong_size_is_skipped_with_a_reason(tmp_path, place):
    folder = tmp_path / ("system" if place == "system" else "xdg/numcnn") / "fashion-mnist"
    make_folder(folder, gz=True)  # fake data: 20 + 10 images, cannot match
    with pytest.warns(UserWarning, match="skipped"):
        with pytest.raises(DataError, match="skipped, it is not the official data") as info:
            resolve("fashion-mnist", download=False)
    assert (f"{folder / 'train-images-idx3-ubyte.gz'}: expected 47040016 bytes of train-images-idx3-ubyte, "
            f"found {16 + 20 * 784}") in str(info.value)


def test_a_copy_of_the_right_size_with_other_bytes_fails_the_md5(tmp_path, monkeypatch):
    system = tmp_path / "system" / "fashion-mnist"
    make_folder(system, gz=True)
    fake_sizes = (16 + 20 * 784, 8 + 20, 16 + 10 * 784, 8 + 10)
    monkeypatch.setitem(datasets.OFFICIAL, "fashion-mnist",
                        dataclasses.replace(datasets.OFFICIAL["fashion-mnist"], content_size=fake_sizes))
    with pytest.warns(UserWarning, match="skipped"):
        with pytest.raises(DataError, match="skipped, it is not the official data") as info:
            resolve("fashion-mnist", download=False)
    assert "expected decompressed md5 f4a8712d7a061bf5bd6d2ca38dc4d50a" in str(info.value)


def test_numcnn_data_folders_are_not_checked_but_the_cache_is(tmp_path, monkeypatch):
    make_folder(tmp_path / "xdg" / "numcnn" / "fashion-mnist")  # fake data in the cache: passed over
    make_folder(tmp_path / "env" / "fashion-mnist")              # fake data of the user's own: used
    monkeypatch.setenv("NUMCNN_DATA", str(tmp_path / "env"))
    assert resolve("fashion-mnist") == (tmp_path / "env" / "fashion-mnist",
                                        f"$NUMCNN_DATA: {tmp_path / 'env' / 'fashion-mnist'}")
    monkeypatch.delenv("NUMCNN_DATA")
    with pytest.warns(UserWarning, match="skipped"):
        with pytest.raises(DataError, match=f"cache {tmp_path / 'xdg' / 'numcnn' / 'fashion-mnist'} skipped"):
            resolve("fashion-mnist", download=False)


def test_download_asks_the_mirrors_for_the_published_files(tmp_path, monkeypatch):
    fetched = []

    def offline(urls, dest, md5):
        fetched.append((urls, Path(dest), md5))
        raise DataError("offline test")

    monkeypatch.setattr(datasets, "fetch", offline)
    with pytest.raises(DataError, match="download: offline test"):
        resolve("mnist")
    assert fetched == [(["https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                         "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz"],
                        tmp_path / "xdg" / "numcnn" / "mnist" / "train-images-idx3-ubyte.gz",
                        "f68b3c2dcbeaaa9fbdd348bbdeb94873")]


def test_download_is_the_last_resort_and_fills_the_cache(tmp_path, monkeypatch):
    served = tmp_path / "served"  # what the (fake) mirrors serve, declared official
    make_folder(served, n_train=2, n_test=2, gz=True)
    declare_official(monkeypatch, "mnist", served)
    fetched = []

    def fake_fetch(urls, dest, md5):
        fetched.append((Path(dest).name, md5))
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(served / Path(dest).name, dest)
        return Path(dest)

    monkeypatch.setattr(datasets, "fetch", fake_fetch)
    cache = tmp_path / "xdg" / "numcnn" / "mnist"
    assert resolve("mnist") == (cache, f"cache: {cache} (just downloaded from the official mirrors, md5 verified)")
    assert fetched == [(f"{stem}.gz", hashlib.md5((served / f"{stem}.gz").read_bytes()).hexdigest())
                       for stem in datasets.FILES]
    assert resolve("mnist") == (cache, f"cache: {cache} (md5 verified)")  # second time: no download
    assert len(fetched) == 4


# --- the bundled sample ------------------------------------------------------------------------

def test_sample_shapes_and_stratification():
    (x_train, y_train), (x_test, y_test) = load("sample")
    assert x_train.shape == (6000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0 and x_train.std() > 0.1
    np.testing.assert_array_equal(np.bincount(y_train), [600] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    assert "bundled sample" in resolve("sample")[1]


def test_sample_is_small_and_licensed():
    sample = datasets.SAMPLE_DIR
    assert sum(p.stat().st_size for p in sample.glob("*.gz")) <= 5 * 2**20
    assert "Zalando SE" in (sample / "LICENSE").read_text()
    assert "make_sample.py" in (sample / "README.md").read_text()


@needs_system_fashion
def test_sample_is_regenerated_exactly_by_the_script(tmp_path):
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "scripts" / "make_sample.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.make_sample(SYSTEM_FASHION, tmp_path, 600, 100, script.SEED)
    for stem in datasets.FILES:
        np.testing.assert_array_equal(read_idx(tmp_path / f"{stem}.gz"), read_idx(datasets.SAMPLE_DIR / f"{stem}.gz"))


@needs_system_fashion
def test_debian_copy_decompresses_to_the_official_content_md5s():
    assert _hashlib_md5s(SYSTEM_FASHION, decompressed=True) == FASHION_CONTENT_MD5
    assert tuple(datasets.content_size(SYSTEM_FASHION / f"{stem}.gz") for stem in datasets.FILES) \
        == FULL_CONTENT_SIZE
    assert datasets.verify_checksums("fashion-mnist", SYSTEM_FASHION) == []


@needs_system_fashion
def test_full_fashion_mnist_from_the_system_copy(monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", SYSTEM_FASHION.parent)
    directory, source = resolve("fashion-mnist", download=False)
    assert (directory, source) == (SYSTEM_FASHION, f"system copy: {SYSTEM_FASHION} (md5 verified)")
    (x_train, y_train), (x_test, y_test) = load("fashion-mnist", download=False)
    assert x_train.shape == (60000, 1, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 1, 28, 28) and y_test.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
