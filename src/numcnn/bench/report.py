"""What ``numcnn bench`` prints, and the JSON file it writes. Nothing here measures."""

from __future__ import annotations

import json
import math

from ..io import atomic_write_bytes
from .runners import IMPLS

COLUMNS = [("workload", 13, "<"), ("dtype", 7, "<"), ("mode", 7, "<"), ("numcnn ms", 19, ">"),
           ("torch ms", 19, ">"), ("textbk ms", 19, ">"), ("GFLOP/s", 7, ">"), ("%peak", 5, ">"),
           ("nc/torch", 16, ">"), ("tb/nc", 16, ">"), ("MiB nc/t/tb", 12, ">"), ("check", 0, "<")]


def _number(value: float, spec: str | None = None) -> str:
    """spec, or for times in ms about 3 significant digits."""
    if spec:
        return spec.format(value)
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def fmt_spread(spread: dict | None, spec: str | None = None, scale: float = 1.0) -> str:
    """"value (lowest-highest round)", or just the value when there was one round."""
    if not spread:
        return "-"
    text = _number(spread["value"] * scale, spec)
    if spread["min"] != spread["max"]:
        text += f" ({_number(spread['min'] * scale, spec)}-{_number(spread['max'] * scale, spec)})"
    return text


def _line(cells) -> str:
    return "  ".join(f"{cell:{align}{width}}" if width else cell
                     for cell, (_, width, align) in zip(cells, COLUMNS)).rstrip()


def table_header() -> str:
    return _line([name for name, _, _ in COLUMNS]) + "\n" + _line(["-" * max(width, 5) for _, width, _ in COLUMNS])


def row_line(row: dict) -> str:
    t, mem = row["seconds"], row["peak_mib"]
    mem_cell = "/".join(f"{mem[impl]['value']:.0f}" if mem.get(impl) else "-" for impl in IMPLS)
    return _line([row["workload"], row["dtype"], row["mode"],
                  *(fmt_spread(t.get(impl), scale=1e3) for impl in IMPLS),
                  "-" if row["gflops"] is None else f"{row['gflops']:.1f}",
                  "-" if row["pct_peak"] is None else f"{row['pct_peak']:.0f}",
                  fmt_spread(row["numcnn_over_torch"], "{:.2f}"), fmt_spread(row["textbook_over_numcnn"], "{:.2f}"),
                  mem_cell, row["check"]])


def header(meta: dict) -> str:
    torch = meta.get("torch")
    return "\n".join([
        f"numcnn bench on {meta['cpu']} ({meta.get('isa', '?')}; {meta['usable_cpus']} of {meta['cpus']} CPUs "
        f"usable), {meta['system']}",
        f"python {meta['python']}, numpy {meta['numpy']} with {meta['blas']}" + (f", torch {torch}" if torch else ""),
        (f"{meta['threads']} threads for each implementation (--threads): numcnn's own pool, torch's intra-op "
         f"threads, the BLAS's own for the book's code and the GEMM peak" if meta.get("threads") else
         f"each library with its own defaults, as its users run it: numcnn's runtime ({meta['numcnn_threads']} "
         "threads), torch's default intra-op threads, the BLAS's own for the book's code"),
        "freed memory kept for reuse (glibc mallopt) in every implementation's process (--same-malloc)"
        if meta.get("same_malloc") else "every library with its own malloc behaviour",
        *([f"device {meta['device']}: numcnn on CuPy, torch on CUDA; memory columns are device MiB reserved"]
          if meta.get("device", "cpu") != "cpu" else []),
    ])


def gemm_line(peaks: dict) -> str:
    size = next(iter(peaks.values()))["size"]
    return f"GEMM peak (np.matmul {size}^3, GFLOP/s): " + ", ".join(
        f"{dtype} {fmt_spread(peak, '{:.1f}')}" for dtype, peak in peaks.items())


def workload_lines(cases: list, with_textbook: bool) -> list[str]:
    return [f"  {case.name:<13} {case.describe()}"
            + ("  (not in the textbook: no batch norm)" if with_textbook and not getattr(case, "in_textbook", True)
               else "") for case in cases]


def method(meta: dict) -> str:
    rounds = f"{meta['rounds']} round{'s' if meta['rounds'] != 1 else ''}"
    return (f"each implementation in a fresh process per round, {rounds} taking turns; "
            f"per process the {meta['stat']} of {meta['repeat']} calls after {meta['warmup']} warm-up calls.\n"
            f"cells: the {meta['stat']} over rounds (lowest-highest round). ratios are taken within a round: "
            "nc/torch > 1 means numcnn is slower, tb/nc > 1 means numcnn is faster.\n"
            "torch fwd runs under no_grad; fwd+bwd returns dx, dweight, dbias. textbook = the book's im2col code "
            "in the input's dtype (per group for groups > 1). MiB: peak memory above the level before the calls.")


def torch_line(versions: dict) -> str:
    """What torch reported from its worker: its threads and the instruction set its CPU kernels
    (oneDNN's among them) were dispatched to."""
    return (f"torch {versions.get('torch')}: {versions.get('torch_threads')} intra-op threads, CPU kernels "
            f"for {versions.get('torch_cpu_capability', 'unknown')}")


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def summarize(rows: list[dict], layer_names: set[str]) -> dict[str, str]:
    """Geomean ratios over the layer workloads: of the per-row values, and the lowest and
    highest of the per-round geomeans."""
    lines = {}

    def line(dtype, mode, key, what):
        ratios = [r[key] for r in rows if r["workload"] in layer_names and r["dtype"] == dtype
                  and r["mode"] == mode and r[key] is not None]
        if not ratios:
            return
        worst = max((r for r in rows if r["workload"] in layer_names and r["dtype"] == dtype and r["mode"] == mode
                     and r[key] is not None), key=lambda r: r[key]["value"])
        per_round = [_geomean(values) for values in zip(*(r["rounds"] for r in ratios))]
        spread = f" (rounds {min(per_round):.2f}-{max(per_round):.2f})" if len(per_round) > 1 else ""
        lines[f"{dtype}_{mode.replace('+', '')}_{key}"] = (
            f"{dtype} {mode} {what}: geomean {_geomean([r['value'] for r in ratios]):.2f}{spread} over {len(ratios)} "
            f"layer workloads, max {worst[key]['value']:.2f} ({worst['workload']})")

    for dtype in ("float32", "float64"):
        for mode in ("fwd+bwd", "fwd"):
            line(dtype, mode, "numcnn_over_torch", "numcnn/torch")
            line(dtype, mode, "textbook_over_numcnn", "textbook/numcnn")
    return lines


def epoch_lines(ep: dict) -> list[str]:
    scaled = ep["steps_timed"] < ep["steps_per_epoch"]
    lines = [f"one epoch of SimpleConvNet, {ep['data']}, batch {ep['batch']}, Adam: "
             + (f"{ep['steps_timed']} steps timed per process, scaled to the epoch's {ep['steps_per_epoch']}"
                if scaled else "the full epoch")]
    ratios = {"torch": ("numcnn/torch", ep["numcnn_over_torch"]), "textbook": ("textbook/numcnn",
                                                                                ep["textbook_over_numcnn"])}
    for impl, seconds in ep["seconds_per_epoch"].items():
        label, ratio = ratios.get(impl, (None, None))
        lines.append(f"  {impl:<9} {fmt_spread(seconds, '{:.1f}'):>20} s/epoch"
                     + (f"   {label} {fmt_spread(ratio, '{:.2f}')}" if ratio else ""))
    return lines


def memory_lines(mem: dict) -> list[str]:
    what = ("rise of the resident set above its level after imports and model construction"
            if mem.get("device", "cpu") == "cpu" else
            f"{mem['device']} memory reserved by each library's caching allocator at the peak")
    lines = [f"peak memory, DeepConvNet training, batch {mem['batch']}, {mem['steps']} steps, float32, each in a "
             f"fresh process ({what}):"]
    for impl, peak in mem["peak_mib"].items():
        lines.append(f"  {impl:<9} +{fmt_spread(peak, '{:.0f}')} MiB   "
                     f"{fmt_spread(mem['seconds_per_step'][impl], '{:.2f}')} s/step")
    return lines


def write_json(path: str, report: dict) -> None:
    """Write the record (NumPy numbers as floats) whole or not at all: a crash keeps the old file."""
    atomic_write_bytes(path, json.dumps(report, indent=1, default=float).encode())
