"""Data-parallel throughput on this machine, and the all-reduce's cost (README: Many processes).

    # 1 process x 2 threads, then 2 (3) processes x 1 thread, per model:
    NUMCNN_NUM_THREADS=2 python benchmarks/distributed.py simple-convnet
    NUMCNN_NUM_THREADS=1 .venv/bin/mpiexec -n 2 python benchmarks/distributed.py simple-convnet

Trains one epoch (after a warm-up epoch) on random images of the model's input shape with a
DistributedTrainer, then times Allreduce alone on a buffer of the model's size and on 8 bytes
(latency). Rank 0 prints one JSON line: images/s, seconds per step, the all-reduce hook's share
of the step (on rank 0; it includes waiting for a slower rank) and the bare all-reduce times.
"""

import json
import os
import sys
import time

import numpy as np

from numcnn import distributed, optim, runtime, zoo

SHAPES = {"simple-convnet": (1, 28, 28), "fashion-net": (1, 28, 28), "cifar-resnet": (3, 32, 32)}


def bare_allreduce(comm, size: int, repeats: int) -> float:
    """Median seconds of one Allreduce of size float32 values, ranks started together."""
    buffer = np.ones(size, np.float32)
    times = []
    for _ in range(repeats):
        comm.comm.Barrier()
        start = time.perf_counter()
        comm.allreduce_sum(buffer)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(name: str, batch_size: int = 120, steps: int = 10) -> None:
    runtime.configure(threads=runtime.parse_threads(os.environ.get(runtime.ENV_VAR, 1)))
    comm = distributed.Comm()
    shape = SHAPES[name]
    rng = np.random.default_rng(0)
    n = batch_size * steps
    x, y = rng.random((n, *shape), dtype=np.float32), rng.integers(0, 10, n)
    model = zoo.model_for(name, shape, 10)
    trainer = distributed.DistributedTrainer(model, None, optim.Adam(model, lr=1e-3), progress=False)
    trainer.fit(x, y, epochs=1, batch_size=batch_size)  # warm-up: buffers, caches
    trainer.allreduce.seconds, trainer.allreduce.calls = 0.0, 0
    start = time.perf_counter()
    trainer.fit(x, y, epochs=2, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    params = model.num_params()
    model_time = bare_allreduce(comm, params, 30)
    latency = bare_allreduce(comm, 2, 200)
    if comm.rank == 0:
        print(json.dumps({
            "model": name, "params": params, "processes": comm.size, "threads": runtime.get_num_threads(),
            "batch": batch_size, "images_per_s": round(n / elapsed, 1), "step_s": round(elapsed / steps, 4),
            "allreduce_share": round(trainer.allreduce.seconds / elapsed, 4),
            "bare_allreduce_model_s": round(model_time, 6), "bare_allreduce_8B_s": round(latency, 6)}))


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:]))
