"""A ReLU fused into the layer before it, against the two run apart, float32, forward+backward:

* DeepConvNet's six conv+ReLU pairs (batch 100);
* the ResBlock's batch norm + ReLU (128 x 32 x 32 x 32, on a convolution's channel-major output);
* the ResBlock's residual sum + ReLU (the same size).

    python benchmarks/fused_relu.py             # every core, 40 rounds
    python benchmarks/fused_relu.py --threads 1 --rounds 20

Apart: the layer's kernel, relu, relu_backward, the layer's backward. Fused: the kernel with
relu=True (a sum and relu_ for the residual block) and its backward. Both run in this one
process, taking turns round after round (the same library and thread pool, so neither disturbs
the other); prints the median and quartiles of each, in ms.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from numcnn import runtime  # noqa: E402 - after the path is set
from numcnn.functional import (batch_norm_backward, batch_norm_forward, conv2d_backward,  # noqa: E402
                               conv2d_forward, relu, relu_backward)
from numcnn.functional.activation import relu_  # noqa: E402

# (C, F, side, padding) of DeepConvNet's convolutions on a 28x28 input; the first needs no dx.
CONV_LAYERS = [(1, 16, 28, 1), (16, 16, 28, 1), (16, 32, 14, 1), (32, 32, 14, 2), (32, 64, 8, 1), (64, 64, 8, 1)]


def conv_pairs(batch: int, rng):
    """(apart, fused) callables over DeepConvNet's conv+ReLU pairs."""
    inputs = []
    for c, f, side, padding in CONV_LAYERS:
        out_side = side + 2 * padding - 2
        inputs.append((rng.standard_normal((batch, c, side, side), dtype=np.float32),
                       rng.standard_normal((f, c, 3, 3), dtype=np.float32) * np.float32(0.1),
                       np.zeros(f, np.float32), padding,
                       rng.standard_normal((batch, f, out_side, out_side), dtype=np.float32)))

    def apart():
        for i, (x, w, b, padding, dout) in enumerate(inputs):
            out, cache = conv2d_forward(x, w, b, padding=padding)
            relu(out)
            conv2d_backward(relu_backward(dout, out), cache, input_grad=i > 0)

    def fused():
        for i, (x, w, b, padding, dout) in enumerate(inputs):
            _, cache = conv2d_forward(x, w, b, padding=padding, relu=True)
            conv2d_backward(dout, cache, input_grad=i > 0)
    return apart, fused


def resblock_pairs(batch: int, rng):
    """(apart, fused) for batch norm + ReLU, and for a residual sum + ReLU, at the ResBlock's size."""
    c, side = 32, 32
    # A convolution's output: (C, N, H, W+1) memory seen as NCHW.
    x = np.empty((c, batch, side, side + 1), np.float32).transpose(1, 0, 2, 3)[..., :side]
    x[...] = rng.standard_normal(x.shape)
    skip = rng.standard_normal(x.shape, dtype=np.float32)
    dout = rng.standard_normal(x.shape, dtype=np.float32)
    stats = (np.ones(c, np.float32), np.zeros(c, np.float32), np.zeros(c, np.float32), np.ones(c, np.float32))

    def norm_apart():
        out, cache, _ = batch_norm_forward(x, *stats)
        relu(out)
        batch_norm_backward(relu_backward(dout, out), cache)

    def norm_fused():
        _, cache, _ = batch_norm_forward(x, *stats, relu=True)
        batch_norm_backward(dout, cache)

    def sum_apart():
        total = x + skip
        relu(total)
        relu_backward(dout, total)

    def sum_fused():
        total = relu_(x + skip)
        relu_backward(dout, total)
    return (norm_apart, norm_fused), (sum_apart, sum_fused)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="default: the library's own")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--scale", type=float, default=1.0, help="batch sizes times this (a smoke test)")
    args = parser.parse_args(argv)
    runtime.configure(threads=args.threads)  # None: the library's default
    rng = np.random.default_rng(0)
    deep_batch, res_batch = max(1, round(100 * args.scale)), max(2, round(128 * args.scale))
    norm, residual = resblock_pairs(res_batch, rng)
    cases = {f"DeepConvNet's six conv+ReLU pairs, batch {deep_batch}": conv_pairs(deep_batch, rng),
             f"ResBlock's batch norm + ReLU, batch {res_batch}": norm,
             f"ResBlock's residual sum + ReLU, batch {res_batch}": residual}
    print(f"float32, {runtime.get_num_threads()} threads, {args.rounds} rounds, ms per forward+backward:")
    for name, (apart, fused) in cases.items():
        times = {"apart": [], "fused": []}
        for _ in range(args.rounds):
            for label, run in (("apart", apart), ("fused", fused)):
                start = time.perf_counter()
                run()
                times[label].append(time.perf_counter() - start)
        print(f"{name}:")
        for label, seconds in times.items():
            q1, median, q3 = np.percentile(np.array(seconds) * 1e3, [25, 50, 75])
            print(f"  {label}: median {median:.2f} (quartiles {q1:.2f}-{q3:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
