"""Build an image folder of real colour photos: ten photos shipped inside scikit-image and
scikit-learn, one class each, cut into 32x32 crops.

    pip download --no-deps scikit-image==0.26.0 scikit-learn==1.9.1 -d /tmp/wheels
    python scripts/make_photo_folder.py /tmp/wheels build/photos        # or: make photos

The photos are read straight out of the wheels (nothing is installed). Each crop is a square
of a random side (15-45% of the photo's shorter side) at a random place, resized to 32x32
with Lanczos filtering. Training crops come from the first 70% of the photo along its longer
side, test crops from the last 30%, so no test pixel was ever seen in training: the task is
to recognise a scene from a part of it never shown, a harder and more honest test than
overlapping crops would be. Writes

    OUT/train/<class>/0000.png ...   (500 per class)
    OUT/test/<class>/0000.png ...    (100 per class)
    OUT/predict/*.jpg                 JPEGs of other sizes, not square, from the test side
                                      of each photo, and one from a second photo (the other
                                      camera of the motorcycle stereo pair), for ``numcnn predict``

Sources and licences: the scikit-image photos are described, with their origin and licence,
in the docstrings of skimage/data/__init__.py (astronaut, rocket and the Hubble deep field are
NASA's, public domain; chelsea, coffee, ihc and retina CC0 or public domain; the motorcycle pair
from the Middlebury stereo data set); china.jpg and flower.jpg are CC BY 2.0, see
sklearn/datasets/images/README.txt.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

# class name -> (wheel prefix, path inside the wheel)
PHOTOS = {
    "astronaut": ("scikit_image", "skimage/data/astronaut.png"),
    "cat": ("scikit_image", "skimage/data/chelsea.png"),
    "coffee": ("scikit_image", "skimage/data/coffee.png"),
    "galaxies": ("scikit_image", "skimage/data/hubble_deep_field.jpg"),
    "tissue": ("scikit_image", "skimage/data/ihc.png"),
    "motorcycle": ("scikit_image", "skimage/data/motorcycle_left.png"),
    "retina": ("scikit_image", "skimage/data/retina.jpg"),
    "rocket": ("scikit_image", "skimage/data/rocket.jpg"),
    "palace": ("scikit_learn", "sklearn/datasets/images/china.jpg"),
    "flower": ("scikit_learn", "sklearn/datasets/images/flower.jpg"),
}
SECOND_PHOTO = ("motorcycle", "scikit_image", "skimage/data/motorcycle_right.png")
TRAIN_SHARE = 0.7
SIDE = (0.15, 0.45)  # crop side, as a fraction of the photo's shorter side


def read_photo(wheels: Path, prefix: str, member: str) -> Image.Image:
    wheel = sorted(wheels.glob(f"{prefix}-*.whl"))
    if not wheel:
        raise SystemExit(f"no {prefix} wheel in {wheels}: pip download --no-deps {prefix.replace('_', '-')} -d {wheels}")
    with zipfile.ZipFile(wheel[-1]) as archive:
        return Image.open(io.BytesIO(archive.read(member))).convert("RGB")


def region(photo: Image.Image, part: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the training or test share along the longer side."""
    w, h = photo.size
    if w >= h:
        cut = round(w * TRAIN_SHARE)
        return (0, 0, cut, h) if part == "train" else (cut, 0, w, h)
    cut = round(h * TRAIN_SHARE)
    return (0, 0, w, cut) if part == "train" else (0, cut, w, h)


def crops(photo: Image.Image, part: str, count: int, rng: np.random.Generator, size=(32, 32)):
    left, top, right, bottom = region(photo, part)
    short = min(photo.size)
    for _ in range(count):
        side = int(rng.integers(round(SIDE[0] * short), round(SIDE[1] * short) + 1))
        side = min(side, right - left, bottom - top)
        x = int(rng.integers(left, right - side + 1))
        y = int(rng.integers(top, bottom - side + 1))
        yield photo.crop((x, y, x + side, y + side)).resize(size, Image.Resampling.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheels", type=Path, help="folder holding the scikit-image and scikit-learn wheels")
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=500, help="crops per class for training (default 500)")
    parser.add_argument("--test", type=int, default=100, help="crops per class for testing (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for name, (prefix, member) in PHOTOS.items():
        photo = read_photo(args.wheels, prefix, member)
        for part, count in (("train", args.train), ("test", args.test)):
            folder = args.out / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, crop in enumerate(crops(photo, part, count, rng)):
                crop.save(folder / f"{i:04d}.png")
        # A larger, non-square JPEG from the test side, for `numcnn predict`.
        (left, top, right, bottom), short = region(photo, "test"), min(photo.size)
        w, h = min(right - left, round(0.4 * short)), min(bottom - top, round(0.3 * short))
        (args.out / "predict").mkdir(parents=True, exist_ok=True)
        photo.crop((left, top, left + w, top + h)).resize((120, 90), Image.Resampling.LANCZOS).save(
            args.out / "predict" / f"{name}-120x90.jpg", quality=90)
    name, prefix, member = SECOND_PHOTO
    photo = read_photo(args.wheels, prefix, member)
    left, top, right, bottom = region(photo, "test")
    photo.crop((left, top, right, bottom)).save(args.out / "predict" / f"{name}-right-camera.jpg", quality=90)
    print(f"wrote {len(PHOTOS)} classes x ({args.train} train + {args.test} test) crops of 32x32 into {args.out}")


if __name__ == "__main__":
    main()
