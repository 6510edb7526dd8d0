"""What one checkpoint inside an epoch (``--checkpoint-every``) costs training, for each zoo model.

    python benchmarks/commit_cost.py [--repeats 7] [--dir FOLDER] [--dtype float32]

Each model trains a few steps on random images with Adam (whose two moment arrays a checkpoint
holds beside the weights) and ``checkpoint_every=1``, so every step but the epoch's last writes a
checkpoint the way a run does: the arrays and the record into a temporary file, its SHA-256,
fsync, a hard link keeping the previous one, the rename, and the folder's fsync. The time of each
of those ``save_checkpoint`` calls is taken from outside, around the call; the report gives the
median, the fastest and the slowest, the file's size, and the median training step beside it
(the time from one backward to the next, less the commit in between; batch 100, the library's
default threads). The folder must be on the disk the runs go to: a tmpfs would leave out the
fsync, which is most of the cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import numcnn as nc
from numcnn import optim, zoo
from numcnn.bench.machine import describe
from numcnn.rundir import CHECKPOINT
from numcnn.train import Trainer

SHAPES = {"cifar-resnet": (3, 32, 32)}  # the others train on 28x28 gray images
BATCH = 100


def measure(name: str, repeats: int, folder: Path, dtype: str) -> dict:
    nc.manual_seed(0)
    shape = SHAPES.get(name, (1, 28, 28))
    model = nc.recipe.cast_model(zoo.model_for(name, shape, 10), dtype)
    trainer = Trainer(model, None, optim.Adam(model, lr=1e-3), out_dir=folder, progress=False,
                      checkpoint_every=1)
    commits, steps = [], []
    save = trainer.save_checkpoint

    def timed_save():
        start = time.perf_counter()
        path = save()
        commits.append(time.perf_counter() - start)
        return path

    trainer.save_checkpoint = timed_save
    timer = StepTimer(steps)
    trainer.hooks.append(timer)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH * (repeats + 1), *shape)).astype(dtype)
    y = rng.integers(0, 10, len(x))
    trainer.fit(x, y, epochs=1, batch_size=BATCH)
    within = commits[:-1]  # the last is the epoch's own (with history.json and model.npz)
    # Between backward i and backward i + 1 come step i's update and its commit, then step i + 1.
    compute = [interval - commit for interval, commit in zip(steps, within)]
    return {"model": name, "parameters": model.num_params(), "bytes": (folder / CHECKPOINT).stat().st_size,
            "median": statistics.median(within), "min": min(within), "max": max(within),
            "epoch_commit": commits[-1], "step": statistics.median(compute)}


class StepTimer(nc.train.Hook):
    """Seconds from one backward's end to the next."""

    def __init__(self, steps: list):
        self.steps, self.last = steps, None

    def after_backward(self, trainer) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.steps.append(now - self.last)
        self.last = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="checkpoints inside the epoch per model")
    parser.add_argument("--dir", default=".", help="where the run folders go (default: here)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--models", nargs="*", default=list(zoo.MODELS))
    args = parser.parse_args()
    machine = describe()
    print(f"# {machine['cpu']} ({machine['isa']}), {machine['usable_cpus']} cores, {machine['system']}, "
          f"numpy {machine['numpy']} with {machine['blas']}; load average {os.getloadavg()[0]:.1f} at the start")
    print(f"# numcnn {nc.__version__}, {args.dtype}, Adam, batch {BATCH}, {args.repeats} checkpoints per model")
    print("| model | parameters | checkpoint MB | commit ms: median (min-max) | epoch-end commit ms "
          "| training step ms | commit / step |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        folder = Path(tempfile.mkdtemp(prefix="commit-cost-", dir=args.dir))
        try:
            r = measure(name, args.repeats, folder, args.dtype)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"| {r['model']} | {r['parameters']:,} | {r['bytes'] / 1e6:.2f} | {r['median'] * 1e3:.1f} "
              f"({r['min'] * 1e3:.1f}-{r['max'] * 1e3:.1f}) | {r['epoch_commit'] * 1e3:.1f} | "
              f"{r['step'] * 1e3:.0f} | {r['median'] / r['step']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
