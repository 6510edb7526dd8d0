"""Image files deeper than 8 bits, as ``numcnn.data.images`` decodes them: 16-bit, 32-bit integer
(mode I) and floating-point (mode F) gray pictures are scaled to 0..255 by the range their values
lie in, never clipped; and the 8-bit modes (bilevel, gray with alpha, palette with transparency)
decode as Pillow's own conversion gives them. Every picture is drawn and saved here with Pillow."""

import numpy as np
import pytest
from PIL import Image

from numcnn import data
from numcnn.data import images
from numcnn.errors import DataError


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))


def saved(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def mode_of(path):
    with Image.open(path) as image:
        return image.mode, image.info


def gray_of(path):
    """The file's one row of pixels, read as gray and as RGB (whose channels must agree)."""
    gray, rgb = images.decode(path, 1), images.decode(path, 3)
    assert gray.dtype == np.uint8 and gray.shape[0] == 1 and rgb.shape[0] == 3
    assert (rgb == gray).all()
    return gray[0, 0].tolist()


@pytest.mark.parametrize("values, expected", [
    ([0.0, 0.25, 0.5, 1.0], [0, 64, 128, 255]),         # in 0..1: times 255, rounded
    ([-1.0, 0.0, 1.0, 3.0], [0, 64, 128, 255]),         # else the image's own min..max
    ([0.0, 63.75, 127.5, 255.0], [0, 64, 128, 255]),
    ([2.0, 2.0, 2.0, 2.0], [0, 0, 0, 0]),               # one value outside 0..1: nothing to stretch
    ([1.0, 1.0, 1.0, 1.0], [255, 255, 255, 255]),       # one value inside: as it is
])
def test_a_floating_point_picture_is_scaled_not_clipped(tmp_path, values, expected):
    path = saved(tmp_path / "f.tif", Image.fromarray(np.array([values], np.float32)))
    assert mode_of(path)[0] == "F"
    assert gray_of(path) == expected


@pytest.mark.parametrize("values, expected", [
    ([0, 100, 200, 255], [0, 100, 200, 255]),                   # 8-bit values: as they are
    ([0, 100 * 256 + 255, 200 * 256, 65535], [0, 100, 200, 255]),  # 16-bit: the high byte
    ([-1000, -500, 0, 1000], [0, 64, 128, 255]),                 # else the image's own min..max
    ([0, 2**22, 2**23, 2**24], [0, 64, 128, 255]),
    ([-7, -7, -7, -7], [0, 0, 0, 0]),
])
def test_a_32_bit_integer_picture_is_scaled_not_clipped(tmp_path, values, expected):
    path = saved(tmp_path / "i.tif", Image.fromarray(np.array([values], np.int32)))
    assert mode_of(path)[0] == "I"
    assert gray_of(path) == expected


def test_a_16_bit_pgm_reads_as_mode_i_and_scales_as_16_bit(tmp_path):
    path = tmp_path / "deep.pgm"
    path.write_bytes(b"P5\n4 1\n65535\n" + np.array([0, 100, 100 * 256, 65535], ">u2").tobytes())
    assert mode_of(path)[0] == "I"
    assert gray_of(path) == [0, 0, 100, 255]  # 100 of 65535 is black, not 100 of 255


def test_nan_or_infinity_is_a_data_error_naming_the_file(tmp_path):
    for bad in (np.nan, np.inf):
        path = saved(tmp_path / f"{bad}.tif", Image.fromarray(np.array([[0.5, bad]], np.float32)))
        with pytest.raises(DataError, match=rf"{path.name}.*mode F.*NaN or infinite"):
            images.decode(path, 1)


def test_deep_pictures_in_a_folder_and_for_predict(tmp_path):
    row = np.linspace(0, 1, 8, dtype=np.float32)[None].repeat(8, axis=0)  # 0 .. 255 across
    expected = np.rint(row * 255).astype(np.uint8)
    saved(tmp_path / "a" / "f.tif", Image.fromarray(row))
    saved(tmp_path / "b" / "i.tif", Image.fromarray(np.rint(row * 65535).astype(np.int32)))
    saved(tmp_path / "b" / "l.png", Image.fromarray(expected))
    (x, _), (x_test, _) = data.load(tmp_path, dtype=None, val_fraction=0.5)
    decoded = np.concatenate([x, x_test])[:, 0]
    assert decoded.shape == (3, 8, 8)
    # The 16-bit one keeps the high byte, which is at most one below the rounded 8-bit value.
    assert all(0 <= int((expected.astype(int) - image).max()) <= 1 and image.max() == 255 for image in decoded)
    picture, inverted = data.read_image(tmp_path / "a" / "f.tif", (1, 8, 8))
    assert not inverted and np.array_equal(picture[0], expected / np.float32(255))


def test_the_8_bit_and_16_bit_modes_decode_as_before(tmp_path):
    sixteen = Image.frombytes("I;16B", (3, 1), np.array([0, 100 * 256 + 255, 65535], ">u2").tobytes())
    assert gray_of(saved(tmp_path / "big.tif", sixteen)) == [0, 100, 255]
    assert mode_of(tmp_path / "big.tif")[0] == "I;16B"
    assert gray_of(saved(tmp_path / "16.png", sixteen)) == [0, 100, 255]
    bilevel = Image.fromarray(np.array([[False, True, True, False]]))
    assert gray_of(saved(tmp_path / "1.png", bilevel)) == [0, 255, 255, 0]
    with_alpha = Image.merge("LA", [Image.fromarray(np.array([[10, 200]], np.uint8)),
                                    Image.fromarray(np.array([[0, 255]], np.uint8))])
    assert gray_of(saved(tmp_path / "la.png", with_alpha)) == [10, 200]  # alpha dropped
    palette = Image.fromarray(np.array([[0, 1, 2]], np.uint8), "P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    path = tmp_path / "p.png"
    palette.save(path, transparency=1)
    assert mode_of(path)[1]["transparency"] == 1
    rgb = images.decode(path, 3)[:, 0].T.tolist()
    assert rgb == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]  # the transparent green keeps its colour
    # ITU-R 601 luma, as Pillow's "L": 299, 587 and 114 per mille of red, green and blue
    assert images.decode(path, 1)[0, 0].tolist() == [76, 150, 29]
