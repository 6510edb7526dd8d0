"""Every implementation timed in a fresh process of its own, the processes taking turns.

For one row, round after round, each implementation runs in a new worker (worker.py): numcnn,
torch, textbook, then torch, textbook, numcnn, ... (the order rotates, so none always goes
first). A process is alone with its thread pool; neighbouring processes share whatever
background load the machine has. Each process gives the median (``--stat min``: the fastest)
of its timed calls; a row reports the same statistic over rounds and the spread, the lowest
and highest round. Ratios are taken within a round, between processes run side by side.

The parent starts the workers, reads their results and compares their outputs; it never imports
torch, and its own small NumPy work (the comparisons, a flop count on one sample) happens while
no worker runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import check
from .workloads import LayerCase, NetCase, net_flops

WORKER = [sys.executable, "-m", "numcnn.bench.worker"]
# Where this numcnn is imported from: workers must import the same one.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class WorkerFailed(Exception):
    """A worker exited with an error; the message is its last line of stderr."""


@dataclass
class Settings:
    """How every worker of one ``numcnn bench`` run is started."""

    impls: list[str]             # implementations to time, numcnn first
    rounds: int
    warmup: int
    repeat: int
    threads: int | None          # every implementation's threads; None: each library's default
    stat: Callable               # statistics.median, or min
    textbook: str | None = None  # path of benchmarks/textbook.py
    quick: bool = False
    device: str = "cpu"          # or "cuda": numcnn on CuPy, torch on CUDA (no textbook)
    batch: int | None = None     # every workload's batch size, if not each its own
    same_malloc: bool = False    # every worker keeps freed memory, not numcnn's alone
    torch_versions: dict = field(default_factory=dict)  # filled in from the first torch worker

    def worker_args(self) -> list[str]:
        args = ["--warmup", str(self.warmup), "--repeat", str(self.repeat)]
        args += ["--threads", str(self.threads)] if self.threads else []
        args += ["--textbook", self.textbook] if self.textbook else []
        args += ["--device", self.device] if self.device != "cpu" else []
        args += ["--batch", str(self.batch)] if self.batch else []
        return args + (["--quick"] if self.quick else [])

    @property
    def memory_key(self) -> str:
        """The worker result's peak memory: the process's resident set, or on a GPU the
        device memory the library's allocator reserved."""
        return "peak_mib" if self.device == "cpu" else "device_peak_mib"


def spawn(impl: str, args: list[str], settings: Settings) -> dict:
    """Run one worker to completion and return its JSON result; later args override earlier."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    # Every worker runs with its library's own malloc behaviour, unless all are asked to keep
    # freed memory (--same-malloc).
    keep = ["--keep-memory"] if settings.same_malloc else []
    proc = subprocess.run([*WORKER, "--impl", impl, *settings.worker_args(), *keep, *args],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}, no output"]
        raise WorkerFailed(f"{impl}: {lines[-1]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if impl == "torch":
        settings.torch_versions.update(result["versions"])
    return result


def take_turns(impls: list[str], settings: Settings, args: list[str], after_round=None):
    """[{impl: worker result}] per round, each implementation in its own process.

    With after_round, every worker also writes its outputs (--check-out), and after each round
    after_round(results, paths) gets that round's results and each implementation's .npz path.
    A worker that fails is recorded in ``failures`` and left out of later rounds.
    """
    impls, rounds, failures = list(impls), [], []
    with tempfile.TemporaryDirectory(prefix="numcnn-bench-") as tmp:
        for r in range(settings.rounds):
            results, paths = {}, {}
            for impl in impls[r % len(impls):] + impls[:r % len(impls)]:
                paths[impl] = os.path.join(tmp, f"{impl}.npz")
                extra = ["--check-out", paths[impl]] if after_round else []
                try:
                    results[impl] = spawn(impl, args + extra, settings)
                except WorkerFailed as exc:
                    failures.append(str(exc))
                    impls.remove(impl)
            if after_round:
                after_round(results, paths)
            rounds.append(results)
    return rounds, failures


# -- statistics ----------------------------------------------------------------------------------
def spread(values: list[float], stat) -> dict | None:
    """The stat over rounds, with the lowest and highest round."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"value": stat(values), "min": min(values), "max": max(values), "rounds": values}


def _per_impl(rounds, value_of, stat) -> dict:
    """{impl: spread of value_of(its worker result) over rounds}."""
    impls = list(dict.fromkeys(impl for r in rounds for impl in r))
    return {impl: spread([value_of(r[impl]) for r in rounds if impl in r], stat) for impl in impls}


def _ratios(rounds, value_of, stat) -> dict:
    """numcnn / torch and textbook / numcnn, taken within each round (the two ran side by side)."""
    def ratio(top, bottom):
        return spread([value_of(r[top]) / value_of(r[bottom]) for r in rounds if top in r and bottom in r], stat)
    return {"numcnn_over_torch": ratio("numcnn", "torch"), "textbook_over_numcnn": ratio("textbook", "numcnn")}


def _impls_for(case, settings: Settings) -> list[str]:
    """The implementations that can run case: the book has no batch norm or residual blocks."""
    return [impl for impl in settings.impls if impl != "textbook" or getattr(case, "in_textbook", True)]


def _status(failures: list[str], mismatches: dict, compared: bool) -> str:
    parts = ["FAILED " + "; ".join(failures)] if failures else []
    parts += ["MISMATCH " + ", ".join(f"{impl} {err:.1e}" for impl, err in mismatches.items())] if mismatches else []
    return " ".join(parts) or ("ok" if compared else "-")


# -- what the three modes of ``numcnn bench`` measure --------------------------------------------
def gemm_peak(dtype: str, settings: Settings) -> dict:
    """GFLOP/s of an n x n x n np.matmul, n = 2048 (256 with --quick; 8192 on a GPU), in fresh
    processes."""
    size = 256 if settings.quick else 2048 if settings.device == "cpu" else 8192
    rounds, failures = take_turns(["numcnn"], settings, ["--case", "gemm", "--dtype", dtype, "--size", str(size)])
    if failures:
        raise WorkerFailed(failures[0])
    t = _per_impl(rounds, lambda result: settings.stat(result["seconds"]), settings.stat)["numcnn"]
    flops = 2.0 * size ** 3
    return {"value": flops / t["value"] / 1e9, "min": flops / t["max"] / 1e9, "max": flops / t["min"] / 1e9,
            "size": size}


def measure_row(case, dtype: str, mode: str, settings: Settings, peak: dict) -> dict:
    """One row of the table: every implementation on one case, checked and timed."""
    impls = _impls_for(case, settings)
    tol = (check.TOL_NET if isinstance(case, NetCase) else check.TOL)[dtype]
    mismatches = {}

    def compare(results, paths):
        if "numcnn" in results:
            outputs = {impl: check.load(paths[impl]) for impl in results}
            for impl, err in check.compare(outputs, tol).items():
                mismatches[impl] = max(err, mismatches.get(impl, 0.0))

    rounds, failures = take_turns(impls, settings, ["--case", case.name, "--dtype", dtype, "--mode", mode],
                                  after_round=compare)

    def seconds_of(result):
        return settings.stat(result["seconds"])
    seconds = _per_impl(rounds, seconds_of, settings.stat)
    flops = case.flops(mode) if isinstance(case, LayerCase) else net_flops(case)
    gflops = flops / seconds["numcnn"]["value"] / 1e9 if flops and seconds.get("numcnn") else None
    return {"workload": case.name, "dtype": dtype, "mode": mode, "seconds": seconds,
            **_ratios(rounds, seconds_of, settings.stat),
            "gflops": gflops, "pct_peak": 100 * gflops / peak["value"] if gflops else None,
            "peak_mib": _per_impl(rounds, lambda result: result[settings.memory_key], settings.stat),
            "check": _status(failures, mismatches, len(impls) > 1), "workers": rounds}


def measure_epoch(settings: Settings, steps: int) -> dict:
    """Seconds per epoch of SimpleConvNet training, per implementation, over rounds: the mean
    step time of `steps` steps, times the steps in an epoch."""
    rounds, failures = take_turns(settings.impls, settings, ["--case", "epoch", "--steps", str(steps)])

    def epoch_seconds(result):
        return sum(result["seconds"]) / len(result["seconds"]) * result["steps_per_epoch"]
    first = next(iter(rounds[0].values()), {}) if rounds else {}
    return {"seconds_per_epoch": _per_impl(rounds, epoch_seconds, settings.stat),
            **_ratios(rounds, epoch_seconds, settings.stat), "steps_timed": len(first.get("seconds", [])),
            "steps_per_epoch": first.get("steps_per_epoch"), "batch": first.get("batch"),
            "data": first.get("data"), "status": _status(failures, {}, True), "workers": rounds}


def measure_memory(settings: Settings, case: NetCase, steps: int) -> dict:
    """Peak memory (MiB above the level before the first step) of `steps` training steps of
    case in float32, each implementation in fresh processes; the steps' times come along."""
    impls = _impls_for(case, settings)
    args = ["--case", case.name, "--mode", "step", "--batch", str(case.batch), "--dtype", "float32",
            "--warmup", "0", "--repeat", str(steps)]
    rounds, failures = take_turns(impls, settings, args)
    return {"batch": case.batch, "steps": steps, "device": settings.device,
            "peak_mib": _per_impl(rounds, lambda result: result[settings.memory_key], settings.stat),
            "seconds_per_step": _per_impl(rounds, lambda result: settings.stat(result["seconds"]), settings.stat),
            "status": _status(failures, {}, True), "workers": rounds}
