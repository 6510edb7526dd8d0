"""Regenerate numcnn's bundled "sample" dataset: a stratified subset of the real Fashion-MNIST.

    python scripts/make_sample.py                      # from /usr/share/datasets/fashion-mnist
    python scripts/make_sample.py --source DIR --out DIR

For each of the 10 classes it draws --train-per-class images from the training set and
--test-per-class from the test set, without replacement, with a generator seeded by --seed.
Chosen images keep their original relative order. The gzip files carry no time stamp, so
the same source and arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from numcnn.data.datasets import FILES, SAMPLE_DIR, find_file, verify_checksums  # noqa: E402
from numcnn.data.idx import read_idx, write_idx  # noqa: E402
from numcnn.errors import DataError  # noqa: E402

SEED = 20170825  # Fashion-MNIST's release date; any fixed value would do
MAX_BYTES = 5 * 2**20


def stratified_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """per_class indices of each label value 0..9, drawn without replacement, sorted.

    labels : (N,) ints; returns (10 * per_class,) int64.
    """
    chosen = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(chosen))


def make_sample(source: Path, out: Path, train_per_class: int, test_per_class: int, seed: int) -> list[Path]:
    """Write the 4 sample IDX .gz files from the Fashion-MNIST folder source into out."""
    problems = verify_checksums("fashion-mnist", source)
    if problems:
        raise DataError(f"{source} is not the official Fashion-MNIST:\n  " + "\n  ".join(problems))
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        images_stem, labels_stem = (stem for stem in FILES if stem.startswith(prefix))
        images = read_idx(find_file(source, images_stem))
        labels = read_idx(find_file(source, labels_stem))
        keep = stratified_indices(labels, per_class, rng)
        for stem, array in ((images_stem, images[keep]), (labels_stem, labels[keep])):
            path = out / f"{stem}.gz"
            write_idx(path, array)
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR)
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()

    try:
        written = make_sample(args.source, args.out, args.train_per_class, args.test_per_class, args.seed)
    except DataError as exc:
        raise SystemExit(str(exc)) from None
    total = sum(path.stat().st_size for path in written)
    for path in written:
        print(f"{path.stat().st_size:>10,d}  {path}")
    print(f"{total:>10,d}  bytes in all (limit {MAX_BYTES:,d})")
    if total > MAX_BYTES:
        raise SystemExit(f"the sample is {total} bytes, over the {MAX_BYTES}-byte limit")


if __name__ == "__main__":
    main()
