"""``numcnn bench``: time numcnn's kernels and training steps against PyTorch and the textbook code.

::

    numcnn bench                         # every workload, float32 and float64, fwd and fwd+bwd
    numcnn bench --only L3,DW --dtype float32 --repeat 15 --rounds 5 --json out.json
    numcnn bench --epoch                 # one epoch of SimpleConvNet on Fashion-MNIST
    numcnn bench --memory                # peak memory of DeepConvNet training, batch 256
    numcnn bench --device cuda           # numcnn on CuPy against PyTorch on CUDA with cuDNN

How it measures, so the numbers can be trusted:

* Every implementation runs in a fresh process of its own (``python -m numcnn.bench.worker``),
  so one's thread pool never competes with another's; the processes take turns, round after
  round (``--rounds``). Per process: the median (``--stat min``: the fastest) of ``--repeat``
  calls after ``--warmup``. Reported: that statistic over rounds and its spread (the lowest
  and highest round); ratios are taken within a round. Each implementation runs as its users
  run it: numcnn with its runtime's defaults (``numcnn.runtime``), torch with its default
  intra-op threads and its training idiom, the textbook code with the BLAS's own threads.
  ``--threads N`` gives every one N threads instead.
  The table, ``--epoch`` and ``--memory`` all measure this way.
* Every worker also saves its outputs (and gradients) for the same seeded inputs and weights;
  they are compared with numcnn's after each round. A mismatch, or a worker that fails, is
  flagged in the table and makes the exit status 1: a wrong kernel is never timed silently.
* GFLOP/s counts 2 flops per multiply-add of the convolution (3x forward for fwd+bwd; for a
  training step, of every Conv2d and Linear) and is given as a share of a large ``np.matmul``
  timed the same way, the most this machine's BLAS can do.
* Memory is the rise of the resident set's high-water mark above its level before the calls.
* The record (``--json``) holds the machine, the versions, the thread counts, every call's time
  and every round. An existing file there is refused before any work unless ``--overwrite``.
* ``--device cuda``: numcnn computes on CuPy arrays and PyTorch on CUDA (cuDNN, TF32 off);
  every timed call ends by waiting for the GPU's queue, so kernels are timed, not their
  launch. Memory is then the device memory each library's caching allocator reserved at the
  peak (CuPy's pool, torch's ``max_memory_reserved``). The textbook code is CPU-only and left out.

The textbook code is not part of the package: it is read from ``benchmarks/textbook.py`` of a
source checkout (``--textbook PATH`` or ``NUMCNN_TEXTBOOK`` to point elsewhere); without it the
textbook column is left out, with a note. torch is imported only by the workers, lazily.

A mistake on the command line (an unknown or abbreviated flag, a count below 1, an unknown
workload) raises a ConfigError before any work, which ``numcnn`` prints as its one ``error:``
line with exit status 2, as for every other command.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import statistics
import sys
from pathlib import Path

from .. import runtime
from ..cliparser import Parser
from ..errors import ConfigError
from ..io import check_output
from . import machine, report
from .measure import Settings, WorkerFailed, gemm_peak, measure_epoch, measure_memory, measure_row
from .workloads import CASES, LAYER_CASES, MEMORY_CASE, NetCase, quick, with_batch

# Where benchmarks/textbook.py sits in a source checkout: src/numcnn/bench/ -> the repository.
DEFAULT_TEXTBOOK = Path(__file__).resolve().parents[3] / "benchmarks" / "textbook.py"


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="numcnn bench",
                description="Time numcnn's kernels and training steps against PyTorch and the textbook code, "
                            "each in its own process, and check that they agree.")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 round of 1 call (a smoke test)")
    p.add_argument("--only", help="comma-separated workloads: " + ",".join(case.name for case in CASES.values()))
    p.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    p.add_argument("--mode", choices=("fwd", "fwdbwd", "both"), default="both")
    p.add_argument("--repeat", type=int, help="timed calls per process (default 7; 1 with --quick)")
    p.add_argument("--warmup", type=int, help="untimed calls first (default 2; 0 with --quick)")
    p.add_argument("--rounds", type=int, help="processes per implementation, taking turns (default 3; 1 with --quick)")
    p.add_argument("--stat", choices=("median", "min"), default="median",
                   help="how calls, and then rounds, combine; min resists a busy machine better")
    p.add_argument("--json", metavar="PATH", help="also write every result to this JSON file (a new one, "
                                                 "unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--threads", type=int, help="threads for every implementation (default: each library's own, "
                                                  "as its users get it)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--same-malloc", action="store_true",
                   help="every implementation keeps freed memory (glibc mallopt, numcnn.runtime."
                        "keep_freed_memory), a setting none of their users gets by default")
    p.add_argument("--no-textbook", action="store_true", help="leave the textbook implementation out")
    p.add_argument("--textbook", metavar="PATH", help="the textbook code (default: $NUMCNN_TEXTBOOK, else "
                   "benchmarks/textbook.py of this source checkout)")
    p.add_argument("--epoch", action="store_true",
                   help="instead of the table: seconds per epoch of SimpleConvNet on Fashion-MNIST")
    p.add_argument("--epoch-steps", type=int, default=100, help="steps timed for --epoch, scaled to an epoch")
    p.add_argument("--memory", action="store_true",
                   help="instead of the table: peak memory of DeepConvNet training, batch 256")
    p.add_argument("--memory-steps", type=int, default=3, help="training steps for --memory")
    p.add_argument("--batch", type=int, help="every workload's batch size (default: each its own; the GPU "
                   "targets are stated at 256)")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda",
                   help="where numcnn and torch compute: cpu (default), or cuda / cuda:N (needs CuPy and a GPU)")
    return p


def main(argv=None) -> int:
    """Run ``numcnn bench`` with the arguments ``argv``; returns the exit status: 0, or 1 when a
    worker failed or disagreed with numcnn. A mistake in ``argv`` (or a device that is not there)
    raises a ConfigError (a DeviceError) before any work."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    _default_sizes(args)
    _check_counts(args)
    if args.json:
        check_output(args.json, args.overwrite)
    cases = _cases(args.only, args.quick, args.batch)
    textbook = _textbook(args)
    if args.device != "cpu":
        from ..backend import check_device, cuda_module
        cuda_module(check_device(args.device))
        if textbook:
            print("note: the textbook code runs on the CPU only; its column is left out on the GPU")
            textbook = None

    impls = ["numcnn"]
    if not args.no_torch:
        if importlib.util.find_spec("torch") is None:
            print("note: torch is not installed; its column is left out")
        else:
            impls.append("torch")
    if textbook:
        impls.append("textbook")
    meta = machine.describe()
    settings = Settings(impls=impls, rounds=args.rounds, warmup=args.warmup, repeat=args.repeat,
                        threads=args.threads, stat=statistics.median if args.stat == "median" else min,
                        textbook=textbook, quick=args.quick, device=args.device, batch=args.batch,
                        same_malloc=args.same_malloc)
    if "torch" in impls:
        meta.update(torch=importlib.metadata.version("torch"))
    meta.update(threads=settings.threads, numcnn_threads=args.threads or runtime.get_num_threads(), impls=impls,
                textbook=textbook, rounds=args.rounds, repeat=args.repeat, warmup=args.warmup,
                stat=args.stat, quick=args.quick, device=args.device, batch=args.batch,
                same_malloc=args.same_malloc)
    print(report.header(meta))
    results = {"meta": meta}
    try:
        if args.memory:
            status = _memory(args, settings, results)
        elif args.epoch:
            status = _epoch(args, settings, results)
        else:
            status = _table(args, cases, settings, results)
    except WorkerFailed as exc:  # the GEMM peak, without which no row means anything
        print(f"numcnn bench: a worker failed: {exc}", file=sys.stderr)
        return 1
    meta["torch_reported"] = settings.torch_versions
    if args.json:
        report.write_json(args.json, results)
        print(f"wrote {args.json}")
    return status


def _default_sizes(args) -> None:
    """--repeat, --warmup and --rounds left unset: 7, 2 and 3, or 1, 0 and 1 with --quick."""
    for name, default, quick_default in (("repeat", 7, 1), ("warmup", 2, 0), ("rounds", 3, 1)):
        if getattr(args, name) is None:
            setattr(args, name, quick_default if args.quick else default)


def _check_counts(args) -> None:
    """A ConfigError naming the flag unless every count is >= 1 and --warmup >= 0."""
    if args.threads is not None:
        runtime.parse_threads(args.threads, "--threads")
    for name, least in (("repeat", 1), ("rounds", 1), ("warmup", 0), ("epoch_steps", 1), ("memory_steps", 1),
                        ("batch", 1)):
        value = getattr(args, name)
        if value is not None and value < least:
            raise ConfigError(f"--{name.replace('_', '-')} must be an int >= {least}, got {value}")


def _cases(only: str | None, quick_run: bool, batch: int | None = None) -> list:
    """The workloads named in --only (all by default), shrunk with --quick, at --batch."""
    names = list(CASES)
    if only is not None:
        wanted = {name.strip().lower() for name in only.split(",") if name.strip()}
        if not wanted or wanted - set(names):
            raise ConfigError(f"unknown workload(s) {sorted(wanted - set(names)) or only!r}; "
                              f"known: {', '.join(case.name for case in CASES.values())}")
        names = [name for name in names if name in wanted]
    cases = [quick(CASES[name]) if quick_run else CASES[name] for name in names]
    return [with_batch(case, batch) for case in cases] if batch else cases


def _textbook(args) -> str | None:
    """The path of the textbook code, or None (after one printed note) when it is not at hand."""
    if args.no_textbook:
        return None
    explicit = args.textbook or os.environ.get("NUMCNN_TEXTBOOK")
    if explicit:
        if not os.path.isfile(explicit):
            source = "--textbook" if args.textbook else "NUMCNN_TEXTBOOK"
            raise ConfigError(f"no textbook code at {explicit!r} (from {source})")
        return os.path.abspath(explicit)
    if DEFAULT_TEXTBOOK.is_file():
        return str(DEFAULT_TEXTBOOK)
    print("note: the textbook code (benchmarks/textbook.py of a source checkout) was not found; its column is "
          "left out (point --textbook or NUMCNN_TEXTBOOK at it)")
    return None


def _table(args, cases, settings: Settings, results: dict) -> int:
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    modes = ["fwd", "fwd+bwd"] if args.mode == "both" else ["fwd+bwd" if args.mode == "fwdbwd" else "fwd"]
    # A training step has no forward-only mode: networks come with fwd+bwd.
    cases = [case for case in cases if not isinstance(case, NetCase) or "fwd+bwd" in modes]
    peaks = {dtype: gemm_peak(dtype, settings) for dtype in dtypes}
    results["meta"]["gemm_peak_gflops"] = peaks
    print(report.gemm_line(peaks))
    print(report.method(results["meta"]))
    print("\n".join(["", "workloads:", *report.workload_lines(cases, settings.textbook is not None), "",
                     report.table_header()]), flush=True)
    rows = []
    for case in cases:
        for dtype in dtypes:
            for mode in ["step"] if isinstance(case, NetCase) else modes:
                rows.append(measure_row(case, dtype, mode, settings, peaks[dtype]))
                print(report.row_line(rows[-1]), flush=True)
    summary = report.summarize(rows, {case.name for case in LAYER_CASES})
    results["rows"], results["summary"] = rows, summary
    print()
    if settings.torch_versions:
        print(report.torch_line(settings.torch_versions))
    for text in summary.values():
        print(text)
    if any(row["check"] not in ("ok", "-") for row in rows):
        print("WARNING: some outputs did not match numcnn's, or a worker failed (see the check column)")
        return 1
    return 0


def _epoch(args, settings: Settings, results: dict) -> int:
    epoch = measure_epoch(settings, args.epoch_steps if not args.quick else 3)
    results["epoch"] = epoch
    print("\n".join(report.epoch_lines(epoch)))
    return _ok(epoch["status"])


def _memory(args, settings: Settings, results: dict) -> int:
    case = MEMORY_CASE if not args.quick else quick(MEMORY_CASE)
    memory = measure_memory(settings, case, args.memory_steps if not args.quick else 1)
    results["memory"] = memory
    print("\n".join(report.memory_lines(memory)))
    return _ok(memory["status"])


def _ok(status: str) -> int:
    if status != "ok":
        print(f"WARNING: {status}")
        return 1
    return 0


__all__ = ["main"]
