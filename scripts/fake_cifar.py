"""Write random pictures in CIFAR-10's binary layout, to time training at CIFAR-10's size
where the real data cannot be downloaded.

    python scripts/fake_cifar.py /tmp/fake-cifar10          # 50 000 + 10 000 records, 184 MB
    numcnn train --dataset cifar10 --data-dir /tmp/fake-cifar10 --model cifar-resnet --epochs 1 ...

Each record is one label byte (0-9) and 3072 random pixel bytes (the red, green and blue
planes of a 32x32 picture), in data_batch_1..5.bin (10 000 records each) and test_batch.bin.
The accuracy of such a run means nothing; its time per epoch is what it is for.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

RECORD = 1 + 3 * 32 * 32


def write_batch(path: Path, count: int, rng: np.random.Generator) -> None:
    records = rng.integers(0, 256, (count, RECORD), dtype=np.uint8)
    records[:, 0] = rng.integers(0, 10, count)
    path.write_bytes(records.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-batch", type=int, default=10000, help="records per file (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        write_batch(args.out / name, args.per_batch, rng)
    print(f"wrote {5 * args.per_batch} + {args.per_batch} random CIFAR-10 records into {args.out}")


if __name__ == "__main__":
    main()
