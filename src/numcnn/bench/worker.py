"""One implementation on one workload, in a process of its own; prints one JSON line.

::

    python -m numcnn.bench.worker --impl torch --case L3 --dtype float32 --mode fwd+bwd \\
        --warmup 2 --repeat 7 --threads 2 --check-out /tmp/torch.npz

Alone in its process, an implementation's thread pool (OpenBLAS's, or torch's OpenMP) never
competes with another's still spinning. The worker first writes the outputs it computes for
the workload's seeded inputs to ``--check-out`` (for a network: logits and gradients, dropout
off), then times a fresh copy. Its JSON line holds the seconds of every timed call, the peak
memory above the level before them, and the versions it ran with.

``--case gemm`` times np.matmul (the GEMM peak); ``--case epoch`` times training steps of
SimpleConvNet over an epoch's batches. ``--device cuda`` runs numcnn on CuPy and PyTorch on
CUDA (see gpu.py: the queue is waited for inside every timed call, and the result also holds
the device memory reserved at the peak).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

import numpy as np

from .. import runtime

from . import check
from .clock import PeakRSS, gemm_call, time_calls
from .gpu import NumcnnGPU, TorchGPU
from .runners import IMPLS, TRAINERS, import_torch, layer_runner, load_textbook
from .workloads import (CASES, EPOCH_CASE, LayerCase, build_net, epoch_data, layer_inputs, net_inputs,
                        quick, with_batch)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m numcnn.bench.worker", description=__doc__.splitlines()[0])
    p.add_argument("--impl", choices=IMPLS, required=True)
    p.add_argument("--case", required=True, help="a workload name, 'gemm' or 'epoch'")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--mode", choices=("fwd", "fwd+bwd", "step"), default="fwd+bwd")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--threads", type=int,
                   help="threads for every implementation: numcnn's (runtime.configure), torch's intra-op "
                        "threads, the BLAS's own for the textbook and the GEMM (default: each library's own)")
    p.add_argument("--textbook", help="path of benchmarks/textbook.py (for --impl textbook)")
    p.add_argument("--check-out", help="write the outputs to compare to this .npz")
    p.add_argument("--batch", type=int, help="override the workload's batch size")
    p.add_argument("--size", type=int, default=2048, help="n of the n x n x n GEMM (--case gemm)")
    p.add_argument("--steps", type=int, default=100, help="training steps timed (--case epoch)")
    p.add_argument("--quick", action="store_true", help="the workload shrunk for smoke tests")
    p.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N (numcnn and torch only)")
    p.add_argument("--keep-memory", action="store_true", help="keep freed memory (numcnn.allocator)")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    # Before torch loads, so that its allocations are kept too where asked.
    kept = runtime.keep_freed_memory() if args.keep_memory else False
    lib, versions = None, {"numpy": np.__version__, "malloc_keeps_freed": kept}
    if args.impl == "torch":
        lib = import_torch(args.threads)
        versions.update(torch=lib.__version__, torch_threads=lib.get_num_threads(),
                        torch_cpu_capability=lib.backends.cpu.get_cpu_capability())
    elif args.impl == "numcnn" and args.case != "gemm":
        runtime.configure(threads=args.threads)  # None: the library's default, as its users get it
        versions.update(numcnn_threads=runtime.get_num_threads())
    else:
        # The textbook code, and the GEMM peak, get the BLAS's own threads.
        if args.threads is not None:
            from threadpoolctl import threadpool_limits
            threadpool_limits(limits=args.threads, user_api="blas")
        if args.impl == "textbook":
            lib = load_textbook(args.textbook)
    gpu = None
    if args.device != "cpu":
        if args.impl == "textbook":
            raise SystemExit("worker: the textbook code runs on the CPU only")
        gpu = NumcnnGPU(args.device) if args.impl == "numcnn" else TorchGPU(lib, args.device)
        versions.update(gpu.describe())
    if args.case == "gemm":
        result = _gemm(args, gpu)
    elif args.case == "epoch":
        result = _epoch(args, lib, gpu)
    else:
        result = _workload(args, lib, gpu)
    print(json.dumps({**result, "versions": versions}))
    return 0


def _workload(args, lib, gpu=None) -> dict:
    case = quick(CASES[args.case.lower()]) if args.quick else CASES[args.case.lower()]
    case = with_batch(case, args.batch) if args.batch else case
    dtype = np.dtype(args.dtype)
    if isinstance(case, LayerCase):
        arrays = layer_inputs(case, dtype)

        def make_run():
            return layer_runner(args.impl, case, arrays, args.mode, lib, gpu)

        def outputs():
            return make_run()()
    else:
        x, y = net_inputs(case, dtype)

        def make_run():
            trainer = TRAINERS[args.impl](build_net(case, dtype), lib, gpu)
            return lambda: trainer.step(x, y)

        def outputs():
            return TRAINERS[args.impl](build_net(case, dtype, dropout=False), lib, gpu).gradients(x, y)
    if args.check_out:
        # From a copy of its own, so the timed one starts fresh, holding none of its memory.
        check.save(args.check_out, outputs())
    if gpu is not None:
        gpu.reset_peak()
    run = make_run()
    with PeakRSS() as memory:
        seconds = time_calls(run, args.warmup, args.repeat, gpu and gpu.sync)
    result = {"seconds": seconds, "peak_mib": memory.mib}
    if gpu is not None:
        result["device_peak_mib"] = gpu.peak_mib()
    return result


def _gemm(args, gpu=None) -> dict:
    run = gemm_call(np.dtype(args.dtype), args.size, gpu)
    return {"seconds": time_calls(run, args.warmup, args.repeat, gpu and gpu.sync), "flops": 2.0 * args.size ** 3}


def _epoch(args, lib, gpu=None) -> dict:
    """Seconds of each of --steps training steps on the epoch's batches, in a fixed shuffled
    order, after 2 warm-up steps; the parent scales them to a whole epoch."""
    case = quick(EPOCH_CASE) if args.quick else EPOCH_CASE
    x, y, source = epoch_data(args.quick)
    trainer = TRAINERS[args.impl](build_net(case, np.float32), lib, gpu)
    steps_per_epoch = len(x) // case.batch
    order = np.random.default_rng(0).permutation(len(x))
    batches = itertools.cycle(order[i * case.batch:(i + 1) * case.batch] for i in range(steps_per_epoch))

    def step():
        idx = next(batches)
        trainer.step(x[idx], y[idx])
    seconds = time_calls(step, 2, min(args.steps, steps_per_epoch), gpu and gpu.sync)
    return {"seconds": seconds, "steps_per_epoch": steps_per_epoch, "batch": case.batch, "data": source}


if __name__ == "__main__":
    sys.exit(main())
