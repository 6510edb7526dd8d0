"""Seconds per training epoch on a GPU, through numcnn's own Trainer, for the README's GPU table.

    PYTHONPATH=src python3 scripts/gpu_epochs.py [--device cuda] [--json out.json]

fashion-net on 60,000 1x28x28 images (Fashion-MNIST's training set size) and cifar-resnet
(width 16, the paper's ResNet-20) on 50,000 3x32x32 images (CIFAR-10's), batch 128, Adam, the
data uint8 on the host as the CLI keeps it. The pictures are random: an epoch costs the same
whatever they show, and nothing is downloaded. One short untimed epoch first compiles CuPy's
kernels; the timed epoch ends with the trainer's own host sync on its last loss.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import numcnn as nc
from numcnn import optim, zoo
from numcnn.train import Trainer

RUNS = {"fashion-net": (dict(), (60_000, 1, 28, 28)),
        "cifar-resnet": (dict(width=16), (50_000, 3, 32, 32))}


def epoch_seconds(name: str, device: str, batch: int) -> float:
    kwargs, shape = RUNS[name]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    y = rng.integers(0, 10, shape[0])
    nc.manual_seed(0)
    model = zoo.get_model(name, **kwargs).to(device)
    trainer = Trainer(model, nc.SoftmaxCrossEntropy(), optim.Adam(model, lr=1e-3), seed=0, progress=False)
    trainer.fit(x[:20 * batch], y[:20 * batch], epochs=1, batch_size=batch)  # compile the kernels
    trainer.epoch = 0
    start = time.perf_counter()
    trainer.fit(x, y, epochs=1, batch_size=batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {}
    for name in RUNS:
        results[name] = epoch_seconds(name, args.device, args.batch)
        print(f"{name:<13} one epoch of {RUNS[name][1][0]:,} images, batch {args.batch}, on {args.device}: "
              f"{results[name]:.1f} s", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": args.device, "batch": args.batch, "epoch_seconds": results}, fh, indent=1)


if __name__ == "__main__":
    main()
