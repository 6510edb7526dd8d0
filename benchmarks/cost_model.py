"""The README's cost model of data-parallel training on many hosts (numbers, not a measurement).

    python benchmarks/cost_model.py

Step time on N hosts = compute of the host's share of the global batch + one ring all-reduce of
the gradients: 2(N-1)/N x M bytes over the link of bandwidth W, plus 2(N-1) messages of latency
a each. Nothing overlaps (numcnn all-reduces after the whole backward). The host rates are those
of the faster configuration in the README's run A (2-core machine); the link latencies are assumptions (stated).
"""

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


if __name__ == "__main__":
    print("fixed per-host batch (weak scaling)")
    table(None)
    print("fixed global batch 1024 (strong scaling)")
    table(1024)
    # The loopback check: 2 ranks on this host, a from the 8-byte all-reduce, W from simple-convnet's.
    a, measured = 0.00012 / 2, {"simple-convnet": 0.002203, "fashion-net": 0.00078, "cifar-resnet": 0.000825}
    bandwidth = MODELS["simple-convnet"][0] * 4 / (measured["simple-convnet"] - 2 * a)
    print(f"loopback: latency {a * 1e6:.0f} us, bandwidth {bandwidth / 1e9:.2f} GB/s")
    for name, (params, _, _) in MODELS.items():
        print(f"  {name}: predicted {allreduce_seconds(params, 2, bandwidth, a) * 1e3:.2f} ms, "
              f"measured {measured[name] * 1e3:.2f} ms")
