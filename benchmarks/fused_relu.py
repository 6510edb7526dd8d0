"""A convolution with its ReLU fused in, against the two run apart: DeepConvNet's six conv+ReLU
pairs (batch 100), forward and backward, float32.

    python benchmarks/fused_relu.py             # 2 threads, 40 rounds
    python benchmarks/fused_relu.py --threads 1 --rounds 20

Apart: conv2d_forward, relu, relu_backward, conv2d_backward. Fused: conv2d_forward(...,
relu=True), conv2d_backward. Both run in this one process, taking turns round after round
(the same library and thread pool, so neither disturbs the other); prints the median and the
quartiles of each, in ms per pass over the six pairs.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from numcnn import threads  # noqa: E402 - after the path is set
from numcnn.allocator import keep_freed_memory  # noqa: E402
from numcnn.functional import conv2d_backward, conv2d_forward, relu, relu_backward  # noqa: E402

# (C, F, side, padding) of DeepConvNet's convolutions on a 28x28 input; the first needs no dx.
LAYERS = [(1, 16, 28, 1), (16, 16, 28, 1), (16, 32, 14, 1), (32, 32, 14, 2), (32, 64, 8, 1), (64, 64, 8, 1)]


def make_inputs(batch: int, rng):
    """[(x, weight, bias, padding, dout)] for each layer, float32."""
    inputs = []
    for c, f, side, padding in LAYERS:
        out_side = side + 2 * padding - 2
        inputs.append((rng.standard_normal((batch, c, side, side), dtype=np.float32),
                       rng.standard_normal((f, c, 3, 3), dtype=np.float32) * np.float32(0.1),
                       np.zeros(f, np.float32), padding,
                       rng.standard_normal((batch, f, out_side, out_side), dtype=np.float32)))
    return inputs


def apart(inputs):
    for i, (x, w, b, padding, dout) in enumerate(inputs):
        out, cache = conv2d_forward(x, w, b, padding=padding)
        relu(out)
        conv2d_backward(relu_backward(dout, out), cache, input_grad=i > 0)


def fused(inputs):
    for i, (x, w, b, padding, dout) in enumerate(inputs):
        _, cache = conv2d_forward(x, w, b, padding=padding, relu=True)
        conv2d_backward(dout, cache, input_grad=i > 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=threads.available_cores())
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    keep_freed_memory()
    threads.set_num_threads(args.threads)
    inputs = make_inputs(args.batch, np.random.default_rng(0))
    times = {"apart": [], "fused": []}
    for _ in range(args.rounds):
        for name, run in (("apart", apart), ("fused", fused)):
            start = time.perf_counter()
            run(inputs)
            times[name].append(time.perf_counter() - start)
    print(f"DeepConvNet's conv+ReLU pairs, batch {args.batch}, float32, {args.threads} threads, "
          f"{args.rounds} rounds, ms per forward+backward of all six:")
    for name, seconds in times.items():
        q1, median, q3 = np.percentile(np.array(seconds) * 1e3, [25, 50, 75])
        print(f"  {name}: median {median:.1f} (quartiles {q1:.1f}-{q3:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
