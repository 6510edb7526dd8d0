"""The cost model of data-parallel training on many hosts (numbers, not a measurement), as the
Many processes page shows it.

    python benchmarks/cost_model.py

Step time on N hosts = compute of the host's share of the global batch + one ring all-reduce of
the gradients: 2(N-1)/N x M bytes over the link of bandwidth W, plus 2(N-1) messages of latency
a each. Nothing overlaps (numcnn all-reduces after the whole backward). The host rates are those
of the faster configuration in the README's run A (2-core machine); the link latencies are assumptions (stated).

Checkpoints (``--checkpoint-every``): with a commit costing C seconds every tau seconds of
training, and failures coming on average every M seconds (the job's MTBF: a host's, divided by
the hosts), the time lost per second of training is C / tau (the commits) + (tau / 2 + R) / M
(each failure redoes half an interval on average, and R to restart). It is least at Young's
interval tau* = sqrt(2 C M), where it is sqrt(2 C / M) + R / M.
"""

import math

MODELS = {  # name: (parameters, images/s of one 2-core host, run A, per-host batch)
    "simple-convnet": (433_890, 1694, 120),
    "fashion-net": (105_490, 197, 120),
    "cifar-resnet": (68_786, 189, 64),
}
LINKS = {"10 Gb/s": (10e9 / 8, 30e-6), "100 Gb/s": (100e9 / 8, 5e-6)}  # bytes/s, latency per message


def allreduce_seconds(params: int, hosts: int, bandwidth: float, latency: float, itemsize: int = 4) -> float:
    if hosts == 1:
        return 0.0
    return 2 * (hosts - 1) / hosts * params * itemsize / bandwidth + 2 * (hosts - 1) * latency


def table(global_batch: int | None) -> None:
    """Each row: hosts, link, step ms, efficiency. global_batch None: the per-host batch is fixed
    (the global batch grows with N); else the global batch is fixed and split N ways."""
    for name, (params, rate, per_host) in MODELS.items():
        for hosts in (8, 64):
            for link, (bandwidth, latency) in LINKS.items():
                batch = per_host if global_batch is None else global_batch / hosts
                compute = batch / rate
                comm = allreduce_seconds(params, hosts, bandwidth, latency)
                step = compute + comm
                print(f"| {name} | {hosts} | {link} | {batch:g} | {compute * 1e3:.1f} | {comm * 1e3:.2f} | "
                      f"{step * 1e3:.1f} | {compute / step:.0%} |")


# Measured by benchmarks/commit_cost.py (results/2026-12-07/commit_cost.txt): the median commit
# inside an epoch (s) and the training step at batch 100 on one 2-core host (s), with the parameters.
COMMITS = {
    "simple-convnet": (0.0495, 0.080, 433_890),
    "mlp": (0.0177, 0.002, 79_510),
    "lenet5": (0.0257, 0.054, 61_706),
    "deep-convnet": (0.0359, 0.495, 123_552),
    "fashion-net": (0.0379, 0.768, 105_490),
    "fashion-net-small": (0.0209, 0.447, 47_290),
    "cifar-resnet": (0.0412, 0.699, 68_786),
}
HOST_MTBF_S = 30 * 24 * 3600  # assumed: a host fails once a month on average
# Measured on loopback (2 ranks, the sample data, a rank killed): 1.7 and 2.9 s more than the run
# undisturbed (mpiexec, imports, the data and the checkpoint read again). A hang adds the collective
# deadline (NUMCNN_COLLECTIVE_TIMEOUT, 120 s by default); real data and hosts take longer to start.
RESTART_S = 3.0


def young_daly(commit: float, mtbf: float) -> float:
    """The checkpoint interval (s) that loses the least time: sqrt(2 * commit cost * MTBF)."""
    return math.sqrt(2 * commit * mtbf)


def lost_fraction(interval: float, commit: float, mtbf: float, restart: float = RESTART_S) -> float:
    """Expected time lost per second of training: commits, work redone and restarts."""
    return commit / interval + (interval / 2 + restart) / mtbf


def checkpoint_table(every: int = 50) -> None:
    """Each row: hosts, step ms, commit ms, job MTBF, Young's interval (s and steps), what is
    lost at it, and the same at --checkpoint-every ``every``. Links: 10 Gb/s."""
    bandwidth, latency = LINKS["10 Gb/s"]
    for name, (commit, compute, params) in COMMITS.items():
        for hosts in (8, 64):
            step = compute + allreduce_seconds(params, hosts, bandwidth, latency)
            mtbf = HOST_MTBF_S / hosts
            best = young_daly(commit, mtbf)
            steps = max(1, round(best / step))
            print(f"| {name} | {hosts} | {step * 1e3:.0f} | {commit * 1e3:.0f} | {mtbf / 3600:.0f} h | "
                  f"{best:.0f} s = {steps:,} steps | {lost_fraction(best, commit, mtbf):.2%} | "
                  f"{best / 2 + RESTART_S:.0f} s | {lost_fraction(every * step, commit, mtbf):.2%} | "
                  f"{every * step / 2 + RESTART_S:.1f} s |")


if __name__ == "__main__":
    print("fixed per-host batch (weak scaling)")
    table(None)
    print("fixed global batch 1024 (strong scaling)")
    table(1024)
    # The loopback check: 2 ranks on this host, a from the 8-byte all-reduce, W from simple-convnet's.
    a, measured = 0.00012 / 2, {"simple-convnet": 0.002203, "fashion-net": 0.00078, "cifar-resnet": 0.000825}
    bandwidth = MODELS["simple-convnet"][0] * 4 / (measured["simple-convnet"] - 2 * a)
    print(f"loopback: latency {a * 1e6:.0f} us, bandwidth {bandwidth / 1e9:.2f} GB/s")
    print(f"checkpoints: host MTBF {HOST_MTBF_S / 86400:.0f} days, restart {RESTART_S:g} s, 10 Gb/s")
    checkpoint_table()
    for name, (params, _, _) in MODELS.items():
        print(f"  {name}: predicted {allreduce_seconds(params, 2, bandwidth, a) * 1e3:.2f} ms, "
              f"measured {measured[name] * 1e3:.2f} ms")
