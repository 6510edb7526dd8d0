"""Where a training step's time goes, by kind of layer: numcnn beside PyTorch.

    python benchmarks/profile_step.py DeepConvNet            # or ResBlock, SimpleConvNet
    python benchmarks/profile_step.py ResBlock --threads 1 --steps 20
    python benchmarks/profile_step.py CifarResNet            # zoo.cifar_resnet, batch 128, 3x32x32

The step is the bench's (``numcnn bench --only NAME``): the same network, batch and seeded
inputs, forward, loss, backward and Adam. CifarResNet (ResNet-20 at width 8, the zoo's
cifar-resnet) is profiled here only; it has no row in the bench's table. numcnn's side times
every leaf layer's forward and backward in the training loop; PyTorch's comes from ``torch.profiler`` on its own step, run in
a separate process so the two thread pools never meet. Each runs with its library's defaults
(threads and malloc), as ``numcnn bench`` has them, unless --threads is given. Both report wall time per step on the
calling thread, in ms, the median step for the total and the mean over steps for each kind.
A ReLU that numcnn fuses into the convolution before it has no time of its own: it is in that
convolution's forward and backward.
"""

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from numcnn import runtime  # noqa: E402 - after the path is set
from numcnn.bench.runners import NumcnnTrainer, TorchTrainer, import_torch  # noqa: E402
from numcnn.bench.workloads import CASES, NETWORKS, PROFILE_CASES, net_inputs  # noqa: E402

KINDS = ("conv forward", "conv backward", "relu", "pooling", "batch norm", "rest")
# torch op name (a prefix of it) -> kind; every other op's self time goes to "rest".
TORCH_OPS = {"aten::mkldnn_convolution": "conv forward", "aten::convolution_backward": "conv backward",
             "aten::clamp_min": "relu", "aten::threshold_backward": "relu", "aten::max_pool2d": "pooling",
             "aten::avg_pool2d": "pooling", "aten::adaptive_avg_pool2d": "pooling", "aten::mean": "pooling",
             "aten::native_batch_norm": "batch norm"}


def _kind(layer, backward: bool) -> str:
    name = type(layer).__name__
    if name == "Conv2d":
        return "conv backward" if backward else "conv forward"
    if name == "ReLU":
        return "relu"
    if "Pool" in name:
        return "pooling"
    return "batch norm" if name.startswith("BatchNorm") else "rest"


def _time_leaves(model, totals):
    """Wrap every leaf layer's forward and backward to add its wall time to totals[kind]."""
    for _, layer in model.named_layers():
        if any(True for _ in layer.children()):
            continue
        for method, backward in (("forward", False), ("forward_fused", False), ("backward", True)):
            def timed(*args, _call=getattr(layer, method), _kind=_kind(layer, backward), **kwargs):
                start = time.perf_counter()
                result = _call(*args, **kwargs)
                totals[_kind] += time.perf_counter() - start
                return result
            setattr(layer, method, timed)


def profile_numcnn(case, steps: int, warmup: int) -> dict:
    model = NETWORKS[case.network](case.input_shape)
    model.train()
    trainer = NumcnnTrainer(model)
    x, y = net_inputs(case, np.float32)
    for _ in range(warmup):
        trainer.step(x, y)
    totals = defaultdict(float)
    _time_leaves(model, totals)
    walls = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.step(x, y)
        walls.append(time.perf_counter() - start)
    by_kind = {kind: totals[kind] / steps * 1e3 for kind in KINDS}
    by_kind["rest"] += np.mean(walls) * 1e3 - sum(by_kind.values())  # loss, Adam, containers
    return {"step": float(np.median(walls) * 1e3), **by_kind}


def profile_torch(case, steps: int, warmup: int, n_threads: int) -> dict:
    torch = import_torch(n_threads)
    from torch.profiler import ProfilerActivity, profile

    trainer = TorchTrainer(NETWORKS[case.network](case.input_shape), torch)
    x, y = net_inputs(case, np.float32)
    for _ in range(warmup):
        trainer.step(x, y)
    walls = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.step(x, y)
        walls.append(time.perf_counter() - start)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.step(x, y)
    by_kind = dict.fromkeys(KINDS, 0.0)
    for event in prof.key_averages():
        kind = next((k for op, k in TORCH_OPS.items() if event.key.startswith(op)), "rest")
        if kind != "rest":
            by_kind[kind] += event.self_cpu_time_total / steps / 1e3
    # The profiler adds overhead of its own: "rest" is what the unprofiled step leaves.
    by_kind["rest"] = max(0.0, np.mean(walls) * 1e3 - sum(by_kind.values()))
    return {"step": float(np.median(walls) * 1e3), "threads": torch.get_num_threads(), **by_kind}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", choices=["SimpleConvNet", "DeepConvNet", "ResBlock", "CifarResNet"])
    parser.add_argument("--threads", type=int, help="for both libraries (default: each its own)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    case = {**CASES, **PROFILE_CASES}[args.network.lower()]
    if args.torch_only:  # the child process: PyTorch's side, as JSON on stdout
        print(json.dumps(profile_torch(case, args.steps, args.warmup, args.threads)))
        return 0
    child = [sys.executable, __file__, args.network, "--torch-only", "--steps", str(args.steps),
             "--warmup", str(args.warmup)] + (["--threads", str(args.threads)] if args.threads else [])
    theirs = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
    runtime.configure(threads=args.threads)  # None: the library's default
    ours = profile_numcnn(case, args.steps, args.warmup)
    print(f"{case.name}: {case.describe()}, float32, numcnn {runtime.get_num_threads()} threads, "
          f"torch {theirs.pop('threads')} threads, ms per step")
    print(f"{'':14} {'numcnn':>8} {'PyTorch':>8} {'ratio':>6}")
    for key in ("step",) + KINDS:
        ratio = ours[key] / theirs[key] if theirs[key] > 0.05 else float("nan")
        print(f"{key:14} {ours[key]:8.1f} {theirs[key]:8.1f} {ratio:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
