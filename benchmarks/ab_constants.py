"""A/B one workload under different values of numcnn's tuning constants, in one process.

    python benchmarks/ab_constants.py deepconvnet base functional.pool.MAX_TAP_PASSES=1
    python benchmarks/ab_constants.py simpleconvnet --batch 64 --forward base \\
        functional.pool.MAX_TAP_PASSES=1,functional.pool.ROUTE_TAP_PASSES=1

Each variant is "base" (the constants as shipped) or comma-separated MODULE.NAME=VALUE settings,
the module named within numcnn.
The variants take turns, the order reversed every round, each time a warm-up call and then the
median of --repeat calls; the report gives each variant's median and its ratio to the first
variant within each round (median, and the quartiles over rounds): on a shared machine the
ratio within a round is steadier than either time. With the library's default threads unless
--threads is given.
"""

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from numcnn import runtime  # noqa: E402 - after the path is set
from numcnn.bench.runners import NumcnnTrainer  # noqa: E402
from numcnn.bench.workloads import CASES, NETWORKS, net_inputs  # noqa: E402


def settings(variant: str) -> dict:
    """{(module, name): value} of a variant; {} for "base"."""
    if variant == "base":
        return {}
    out = {}
    for part in variant.split(","):
        key, value = part.split("=", 1)
        module, name = key.rsplit(".", 1)
        out[("numcnn." + module, name)] = int(eval(value, {}))  # "1<<20" and the like
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", choices=[key for key, case in CASES.items() if hasattr(case, "network")])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--batch", type=int, help="default: the bench's")
    parser.add_argument("--forward", action="store_true", help="time model.forward, not a training step")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    runtime.configure(threads=args.threads)
    case = CASES[args.network]
    model = NETWORKS[case.network](case.input_shape)
    model.train()
    trainer = NumcnnTrainer(model)
    x, y = net_inputs(case, np.float32)
    x, y = x[:args.batch], y[:args.batch]
    call = (lambda: model.forward(x)) if args.forward else (lambda: trainer.step(x, y))
    wanted = {variant: settings(variant) for variant in args.variants}
    shipped = {key: getattr(importlib.import_module(key[0]), key[1]) for s in wanted.values() for key in s}

    def apply(variant):
        for (module, name), value in {**shipped, **wanted[variant]}.items():
            setattr(importlib.import_module(module), name, value)

    times = {variant: [] for variant in args.variants}
    for round_ in range(args.rounds):
        for variant in args.variants if round_ % 2 == 0 else args.variants[::-1]:
            apply(variant)
            call()
            calls = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                call()
                calls.append(time.perf_counter() - start)
            times[variant].append(np.median(calls) * 1e3)
    apply("base")
    first = np.array(times[args.variants[0]])
    what = "forward" if args.forward else "training step"
    print(f"{case.name} {what}, batch {len(x)}, numcnn {runtime.get_num_threads()} threads, "
          f"{args.rounds} rounds of {args.repeat} calls, ms")
    for variant in args.variants:
        ratio = np.array(times[variant]) / first
        print(f"{variant:60s} {np.median(times[variant]):8.2f}  ratio {np.median(ratio):.3f} "
              f"({np.percentile(ratio, 25):.3f}-{np.percentile(ratio, 75):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
