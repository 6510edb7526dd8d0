"""Does "auto" lose to one thread at any batch size? A model's forward timed at batch sizes from
1 to 256, numcnn with its default threads against one thread, each in a fresh process, taking
turns over rounds; the median of the rounds' medians is printed.

    python benchmarks/threads_small.py                       # simple-convnet, deep-convnet, fashion-net
    python benchmarks/threads_small.py --models simple-convnet --rounds 5
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

BATCHES = (1, 4, 16, 64, 256)


def child(threads: str, models: list[str]) -> dict:
    import numpy as np

    import numcnn as nc

    if threads != "auto":
        nc.runtime.configure(threads=int(threads))
    times = {}
    for name in models:
        nc.manual_seed(0)
        model = nc.zoo.get_model(name).eval()
        for batch in BATCHES:
            x = np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)
            for _ in range(3):
                model.forward(x)
            calls = []
            for _ in range(max(7, 200 // batch)):
                start = time.perf_counter()
                model.forward(x)
                calls.append(time.perf_counter() - start)
            times[f"{name}:{batch}"] = statistics.median(calls) * 1e3
    return {"threads": nc.runtime.get_num_threads(), "ms": times}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="simple-convnet,deep-convnet,fashion-net")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",")
    if args.child:
        print(json.dumps(child(args.child, models)))
        return 0
    runs = {"1": [], "auto": []}
    for r in range(args.rounds):
        for threads in (("1", "auto") if r % 2 == 0 else ("auto", "1")):
            done = subprocess.run([sys.executable, __file__, "--child", threads, "--models", args.models],
                                  capture_output=True, text=True, check=True)
            runs[threads].append(json.loads(done.stdout))
    auto_threads = runs["auto"][0]["threads"]
    print(f"forward ms, median of {args.rounds} rounds: one thread against auto ({auto_threads} threads)")
    print(f"{'model:batch':22} {'1 thread':>9} {'auto':>9} {'auto/1':>7}")
    for key in runs["1"][0]["ms"]:
        one = statistics.median(run["ms"][key] for run in runs["1"])
        auto = statistics.median(run["ms"][key] for run in runs["auto"])
        print(f"{key:22} {one:9.2f} {auto:9.2f} {auto / one:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
