"""Image folders as datasets, on pictures the tests draw and save with Pillow: both layouts,
class order, every format, channel rules, resizing, unreadable files, the split, the cache."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from numcnn import data
from numcnn.data.folder import open_folder
from numcnn.data import folder as folders
from numcnn.data import images
from numcnn.errors import ConfigError, DataError

_real_decode = images.decode


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    """A cache of this test's own, outside the folders it reads (where it would be a class)."""
    root = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    return root


def save(path, pixels, mode=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels) if mode is None else Image.fromarray(pixels).convert(mode)
    image.save(path, **kw)
    return path


def colour(seed, size=(8, 8)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def by_content(x, y):
    """The (label, image bytes) pairs of a split, sorted: comparable whatever the order."""
    return sorted((int(label), image.tobytes()) for image, label in zip(x, y))


def test_train_and_test_folders_every_lossless_format_and_classes_sorted_by_name(tmp_path):
    # Class names deliberately out of order on disk and in case: sorted as torchvision sorts.
    expected_train, expected_test = [], []
    classes = ["Zebra", "ant", "bee"]  # sorted() order: "Zebra" < "ant" < "bee"
    for label, name in enumerate(classes):
        for i, (ext, kw) in enumerate([("png", {}), ("bmp", {}), ("tif", {}), ("webp", {"lossless": True})]):
            pixels = colour(100 * label + i)
            save(tmp_path / "train" / name / f"{i}.{ext}", pixels, **kw)
            expected_train.append((label, pixels.transpose(2, 0, 1)))
        pixels = colour(1000 + label)
        save(tmp_path / "test" / name / "t.PNG", pixels)  # the extension's case does not matter
        expected_test.append((label, pixels.transpose(2, 0, 1)))
    (tmp_path / "train" / "ant" / "notes.txt").write_text("not a picture")
    save(tmp_path / "train" / "ant" / ".hidden.png", colour(7))
    (x, y), (x_test, y_test) = data.load(tmp_path, dtype=None)
    assert x.dtype == np.uint8 and x.shape == (12, 3, 8, 8) and y.dtype == np.int64
    assert by_content(x, y) == sorted((label, p.tobytes()) for label, p in expected_train)
    assert by_content(x_test, y_test) == sorted((label, p.tobytes()) for label, p in expected_test)
    assert data.class_names(str(tmp_path)) == classes
    assert len(set(y[:4].tolist())) > 1  # a fixed shuffle: the first images are not one class


def test_gray_rgba_and_palette_pictures_become_the_datasets_channels(tmp_path):
    rgb = colour(1)
    gray = np.random.default_rng(2).integers(0, 256, (8, 8), dtype=np.uint8)
    rgba = np.dstack([colour(3), np.full((8, 8), 10, np.uint8)])
    save(tmp_path / "a" / "rgb.png", rgb)
    save(tmp_path / "a" / "gray.png", gray)
    save(tmp_path / "b" / "rgba.png", rgba)
    palette = Image.fromarray(colour(4)).quantize(8)
    palette.save(tmp_path / "b" / "palette.gif")
    (x, y), (x_test, y_test) = data.load(tmp_path, dtype=None, val_fraction=0.5)
    got = {image.tobytes() for image in np.concatenate([x, x_test])}
    assert x.shape[1] == 3  # one colour picture makes the dataset RGB
    assert np.repeat(gray[None], 3, axis=0).tobytes() in got           # gray: R = G = B
    assert rgba[:, :, :3].transpose(2, 0, 1).tobytes() in got           # alpha dropped
    assert np.asarray(palette.convert("RGB")).transpose(2, 0, 1).tobytes() in got
    (x1, _), _ = data.load(tmp_path, dtype=None, val_fraction=0.5, channels=1)
    assert x1.shape[1] == 1


def test_all_gray_is_one_channel_unless_asked_for_three(tmp_path):
    for label in ("a", "b"):
        for i in range(2):
            save(tmp_path / label / f"{i}.png", np.full((6, 6), 40 * i + (label == "b") * 100, np.uint8))
    assert data.load(tmp_path, dtype=None)[0][0].shape[1:] == (1, 6, 6)
    assert data.load(tmp_path, dtype=None, channels=3)[0][0].shape[1:] == (3, 6, 6)


def test_image_size_resizes_the_shorter_side_and_crops_the_centre_and_mixed_sizes_get_the_median(tmp_path):
    wide = np.zeros((32, 64, 3), np.uint8)
    wide[:, :16] = (255, 0, 0)
    wide[:, 16:48] = (0, 255, 0)  # the centre square of the picture
    wide[:, 48:] = (0, 0, 255)
    save(tmp_path / "train" / "a" / "wide.png", wide)
    save(tmp_path / "train" / "b" / "small.png", colour(5, (8, 8)))
    save(tmp_path / "test" / "a" / "t.png", colour(6, (8, 8)))
    # Without image_size: the median shorter side of 32, 8 and 8, said in the description.
    info = open_folder(tmp_path)
    assert info.shape == (3, 8, 8) and "resized to 8x8" in info.description
    (x, y), _ = data.load(tmp_path, image_size=16, dtype=None)
    picture = x[y == 0][0]
    assert picture.shape == (3, 16, 16)
    # Only the green centre survives (a stretched picture would show red and blue at its sides).
    assert picture[1].mean() > 240 and picture[[0, 2], :, 2:-2].max() < 40


def test_an_unreadable_file_is_skipped_with_one_warning_or_with_strict_an_error(tmp_path):
    for label in ("a", "b"):
        for i in range(3):
            save(tmp_path / label / f"{i}.png", colour(10 * (label == "b") + i))
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png at all")
    good = save(tmp_path / "b" / "cut.jpg", colour(9, (64, 64)), quality=95)
    good.write_bytes(good.read_bytes()[:200])  # a JPEG cut short
    with pytest.warns(folders.SkippedImagesWarning, match=r"skipped 2 unreadable image files: a/broken.png, "
                                                          r"b/cut.jpg .*strict"):
        (x, _), (x_test, _) = data.load(tmp_path, val_fraction=0.3)
    assert len(x) + len(x_test) == 6
    with pytest.warns(folders.SkippedImagesWarning):  # the second run, from the cache, warns the same
        data.load(tmp_path, val_fraction=0.3)
    with pytest.raises(DataError, match="cannot read 2 .* a/broken.png"):
        data.load(tmp_path, val_fraction=0.3, strict=True)


def test_a_flat_folder_is_split_per_class_by_the_seed(tmp_path):
    for label, count in (("a", 10), ("b", 5), ("c", 2)):
        for i in range(count):
            save(tmp_path / label / f"{i}.png", colour(100 * len(label) * count + i))
    (_, y), (_, y_test) = data.load(tmp_path, val_fraction=0.2, seed=0)
    assert np.bincount(y_test).tolist() == [2, 1, 1] and np.bincount(y).tolist() == [8, 4, 1]
    held = {seed: by_content(*data.load(tmp_path, val_fraction=0.2, seed=seed, dtype=None)[1]) for seed in (0, 0, 1)}
    assert held[0] == by_content(*data.load(tmp_path, val_fraction=0.2, seed=0, dtype=None)[1])
    assert held[0] != held[1]
    (_, y), (_, y_test) = data.load(tmp_path)  # default: 0.2
    assert len(y_test) == 4


def test_folder_mistakes_are_named(tmp_path):
    save(tmp_path / "train" / "a" / "0.png", colour(0))
    save(tmp_path / "test" / "b" / "0.png", colour(1))
    with pytest.raises(DataError, match=r"classes \['b'\] are not in .*train"):
        data.load(tmp_path)
    save(tmp_path / "test" / "a" / "0.png", colour(2))
    (tmp_path / "test" / "b" / "0.png").unlink()
    (tmp_path / "test" / "b").rmdir()
    save(tmp_path / "train" / "c" / "0.png", colour(3))  # two classes: one alone is an error of its own
    with pytest.raises(ConfigError, match="has its own test split"):
        data.load(tmp_path, val_fraction=0.2)
    with pytest.raises(DataError, match="one subfolder per class"):
        data.load(tmp_path / "train" / "a")
    with pytest.raises(DataError, match="no such folder"):
        data.load(str(tmp_path / "nowhere"))


def test_decoded_once_then_read_from_the_cache_until_the_folder_changes(tmp_path, monkeypatch, own_cache):
    for label in ("a", "b"):
        for i in range(3):
            save(tmp_path / "photos" / label / f"{i}.png", colour(i + 10 * (label == "a")))
    first = data.load(tmp_path / "photos", dtype=None)
    cache_dir = own_cache / "numcnn" / "folders"
    assert len(list(cache_dir.iterdir())) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the folder did not change")

    monkeypatch.setattr(images, "decode", no_decoding)
    second = data.load(tmp_path / "photos", dtype=None)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    monkeypatch.setattr(images, "decode", _real_decode)
    changed = tmp_path / "photos" / "a" / "0.png"
    save(changed, colour(99))
    os.utime(changed, ns=(1, 1))  # a new file with a new size or time is a new folder
    (x, _), (x_test, _) = data.load(tmp_path / "photos", dtype=None)
    assert colour(99).transpose(2, 0, 1).tobytes() in {p.tobytes() for p in np.concatenate([x, x_test])}
    assert len(list(cache_dir.iterdir())) == 1  # the stale cache was removed
    data.load(tmp_path / "photos", image_size=4)
    assert len(list(cache_dir.iterdir())) == 2  # other options keep their own


def test_pillow_missing_is_a_config_error_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)
    with pytest.raises(ConfigError, match=r"Pillow.*pip install 'numcnn\[train\]'"):
        images.require_pillow()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match="Pillow"):
            data.load(tmp_path)


def test_a_progress_bar_on_request_while_decoding(tmp_path, capsys):
    for label in ("a", "b"):
        for i in range(3):
            save(tmp_path / "photos" / label / f"{i}.png", colour(i + 10 * (label == "a")))
    data.load(tmp_path / "photos", progress=True)
    assert "decoding photos" in capsys.readouterr().err
    data.load(tmp_path / "photos", progress=True)  # from the cache: nothing to decode, no bar
    assert "decoding" not in capsys.readouterr().err


def test_a_class_folder_without_pictures_is_an_error_as_in_torchvision(tmp_path):
    save(tmp_path / "a" / "0.png", colour(0))
    save(tmp_path / "a" / "1.png", colour(1))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("no pictures here")
    with pytest.raises(DataError, match=r"class folders \['b'\] hold no image files"):
        data.load(tmp_path)


def test_without_image_size_one_size_is_kept_and_mixed_sizes_get_the_median(tmp_path):
    for label in ("a", "b"):
        for i in range(2):
            save(tmp_path / "square" / label / f"{i}.png", colour(i, (12, 12)))
            save(tmp_path / "photos" / label / f"{i}.png", colour(i, (40, 48)))
            save(tmp_path / "large" / label / f"{i}.png", colour(i, (300, 200)))
    square = open_folder(tmp_path / "square", val_fraction=0.5)
    assert square.shape == (3, 12, 12) and "resized" not in square.description
    assert open_folder(tmp_path / "photos", val_fraction=0.5).shape == (3, 40, 48)  # an MLP takes it
    (tmp_path / "large" / "a" / "0.png").unlink()
    save(tmp_path / "large" / "a" / "0.png", colour(0, (250, 180)))
    large = open_folder(tmp_path / "large", val_fraction=0.5)
    assert large.shape == (3, 64, 64) and "resized to 64x64" in large.description
    # A model of square images gets them square, and the run records the size it read them at.
    from numcnn import recipe
    run = recipe.build({"model": "lenet5", "dataset": str(tmp_path / "photos"), "val_fraction": 0.5, "epochs": 1})
    assert run.dataset.shape == (3, 40, 40) and run.config["image_size"] == 40
