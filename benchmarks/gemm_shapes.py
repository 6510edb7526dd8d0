"""How fast the BLAS runs the products a convolution's forward hands it, by shape: why
small-channel 3x3 layers (DeepConvNet's, a ResNet block's) lag PyTorch's direct kernels.

    python benchmarks/gemm_shapes.py            # one thread, 3 rounds
    python benchmarks/gemm_shapes.py --rounds 5 --columns 20000

A stride-1 3x3 convolution with C input and F output channels multiplies W (F, 9C) by its
columns (9C, T), T output positions of a chunk. The rows F and the reduction 9C are set by the
layer; only T grows with the batch. Each shape is timed on one thread (numcnn's kernels hold the
BLAS to one thread and run chunks on their own threads), median of 7 calls per round; the table
gives the median GFLOP/s over rounds and the lowest and highest round.
"""

import argparse
import time

import numpy as np

from numcnn import runtime
from numcnn.bench import machine

# (F, C): DeepConvNet's layers, cifar-resnet/ResBlock's, and wider layers for comparison.
SHAPES = [(16, 1), (16, 16), (32, 16), (32, 32), (64, 32), (64, 64), (128, 128), (256, 256)]


def gflops(f: int, k: int, t: int, calls: int, rng) -> float:
    w = rng.standard_normal((f, k)).astype(np.float32)
    col = rng.standard_normal((k, t)).astype(np.float32)
    out = np.empty((f, t), np.float32)
    np.matmul(w, col, out=out)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        np.matmul(w, col, out=out)
        times.append(time.perf_counter() - start)
    return 2.0 * f * k * t / np.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--columns", type=int, default=12000, help="T, output positions (default 12000)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    info = machine.describe()
    print(f"{info['cpu']} ({info['isa']}); numpy {info['numpy']} with {info['blas']}")
    print(f"float32 W (F, 9C) @ columns (9C, {args.columns}), one thread, {args.rounds} rounds\n")
    print(f"{'F':>4} {'C':>4} {'9C':>5}  GFLOP/s median (lowest-highest round)")
    with runtime.blas_held():
        results = {shape: [] for shape in SHAPES}
        for _ in range(args.rounds):  # rounds take turns over the shapes, so drift hits them all
            for f, c in SHAPES:
                results[(f, c)].append(gflops(f, 9 * c, args.columns, 7, rng))
    for (f, c), values in results.items():
        print(f"{f:>4} {c:>4} {9 * c:>5}  {np.median(values):6.1f} ({min(values):.1f}-{max(values):.1f})")


if __name__ == "__main__":
    main()
