"""load() and resolve(): the lookup order, the checks on the data, and the bundled sample."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from numcnn.data import CLASS_NAMES, DATASETS, class_names, load, read_idx, resolve, write_idx
from numcnn.data import datasets
from numcnn.errors import DataError

REPO = Path(__file__).resolve().parents[1]
SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


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
        load("cifar10")
    for name in DATASETS:
        assert name in str(info.value)
    with pytest.raises(DataError):
        resolve(None)


def test_class_names():
    assert class_names("mnist") == [str(d) for d in range(10)]
    assert class_names("fashion_mnist") == class_names("fashion-mnist") == CLASS_NAMES["fashion-mnist"]
    assert class_names("fashion-mnist")[0] == "T-shirt/top" and class_names("fashion-mnist")[9] == "Ankle boot"
    assert class_names("sample") == CLASS_NAMES["fashion-mnist"]
    class_names("mnist").append("oops")  # a copy: the table stays intact
    assert len(CLASS_NAMES["mnist"]) == 10


# --- lookup order ------------------------------------------------------------------------------

def test_lookup_order(tmp_path, monkeypatch):
    given, env, cache = tmp_path / "given", tmp_path / "env", tmp_path / "xdg" / "numcnn" / "mnist"
    make_folder(given, n_train=3)
    make_folder(env / "mnist", n_train=4)
    make_folder(cache, n_train=5)
    monkeypatch.setenv("NUMCNN_DATA", str(env))

    def n_train(**kwargs):
        return len(load("mnist", **kwargs)[0][0])

    assert resolve("mnist", data_dir=given) == (given, f"data_dir argument: {given}")
    assert n_train(data_dir=given) == 3
    assert resolve("mnist")[0] == env / "mnist" and "NUMCNN_DATA" in resolve("mnist")[1]
    assert n_train() == 4
    monkeypatch.delenv("NUMCNN_DATA")
    assert resolve("mnist") == (cache, f"cache: {cache}")
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
    monkeypatch.setenv("NUMCNN_DATA", str(tmp_path / "env"))
    assert resolve("fashion-mnist")[0] == tmp_path / "xdg" / "numcnn" / "fashion-mnist"


def test_cache_defaults_to_home_without_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    make_folder(tmp_path / "home" / ".cache" / "numcnn" / "mnist")
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

def _content_md5s(folder):
    return tuple(datasets._md5(datasets.find_file(folder, stem), decompressed=True) for stem in datasets.FILES)


def test_system_copy_with_the_right_checksums_is_used(tmp_path, monkeypatch):
    system = tmp_path / "system" / "fashion-mnist"
    make_folder(system, gz=True)
    official = datasets.Official(mirrors=(), archive_md5=("0" * 32,) * 4, content_md5=_content_md5s(system))
    monkeypatch.setitem(datasets.OFFICIAL, "fashion-mnist", official)
    directory, source = resolve("fashion-mnist")
    assert directory == system and source.startswith("system copy") and "md5 verified" in source


def test_system_copy_matching_the_archive_md5_is_used(tmp_path, monkeypatch):
    system = tmp_path / "system" / "mnist"
    make_folder(system, gz=True)
    archive = tuple(datasets.file_md5(system / f"{stem}.gz") for stem in datasets.FILES)
    official = datasets.Official(mirrors=(), archive_md5=archive, content_md5=None)
    monkeypatch.setitem(datasets.OFFICIAL, "mnist", official)
    assert resolve("mnist")[0] == system


def test_system_copy_with_wrong_checksums_is_skipped_with_a_reason(tmp_path):
    make_folder(tmp_path / "system" / "fashion-mnist", gz=True)  # fake data: cannot match
    with pytest.warns(UserWarning, match="skipped"):
        with pytest.raises(DataError, match="skipped, it is not the official data") as info:
            resolve("fashion-mnist", download=False)
    assert "expected decompressed md5 f4a8712d7a061bf5bd6d2ca38dc4d50a" in str(info.value)


def test_user_folders_are_not_checked_by_md5(tmp_path):
    make_folder(tmp_path / "xdg" / "numcnn" / "fashion-mnist")
    assert resolve("fashion-mnist")[0] == tmp_path / "xdg" / "numcnn" / "fashion-mnist"


def test_download_is_the_last_resort_and_fills_the_cache(tmp_path, monkeypatch):
    fetched = []

    def fake_fetch(urls, dest, md5):
        fetched.append((urls, Path(dest).name, md5))
        stem = Path(dest).name.removesuffix(".gz")
        shape = (2, 28, 28) if "images" in stem else (2,)
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        write_idx(dest, np.zeros(shape, np.uint8))
        return Path(dest)

    monkeypatch.setattr(datasets, "fetch", fake_fetch)
    cache = tmp_path / "xdg" / "numcnn" / "mnist"
    directory, source = resolve("mnist")
    assert directory == cache and "downloaded" in source
    assert [name for _, name, _ in fetched] == [stem + ".gz" for stem in datasets.FILES]
    urls, _, md5 = fetched[0]
    assert urls == ["https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz"]
    assert md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert resolve("mnist") == (cache, f"cache: {cache}")  # second time: no download


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


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(),
                    reason=f"Fashion-MNIST not installed at {SYSTEM_FASHION} (Debian package dataset-fashion-mnist)")
def test_sample_is_regenerated_exactly_by_the_script(tmp_path):
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "scripts" / "make_sample.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.make_sample(SYSTEM_FASHION, tmp_path, 600, 100, script.SEED)
    for stem in datasets.FILES:
        np.testing.assert_array_equal(read_idx(tmp_path / f"{stem}.gz"), read_idx(datasets.SAMPLE_DIR / f"{stem}.gz"))


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(),
                    reason=f"Fashion-MNIST not installed at {SYSTEM_FASHION} (Debian package dataset-fashion-mnist)")
def test_full_fashion_mnist_from_the_system_copy(monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", SYSTEM_FASHION.parent)
    directory, source = resolve("fashion-mnist", download=False)
    assert directory == SYSTEM_FASHION and source.startswith("system copy")
    (x_train, y_train), (x_test, y_test) = load("fashion-mnist", download=False)
    assert x_train.shape == (60000, 1, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 1, 28, 28) and y_test.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
