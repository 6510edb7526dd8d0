"""A rank of the distributed tests' MPI jobs (run by tests/test_distributed.py under mpiexec).

    mpiexec -n N python tests/distributed_worker.py MODE OUT.npz

Trains the batch-norm model of ``bn_run`` for its steps with a DistributedTrainer and has rank 0
save the weights. MODE: "sync-bn" (global batch statistics), "per-rank-bn" (each rank's own),
"no-allreduce" (the gradient all-reduce taken out: every rank steps on its own shard), or a
fault after the first epoch: "raise" (rank 1 raises) or "hang" (rank 1 stops answering).
"""

import sys
import time

import numpy as np

import numcnn as nc
from numcnn import distributed, optim
from numcnn.model import state_dict


def bn_model():
    nc.manual_seed(3)
    model = nc.Sequential(nc.Conv2d(1, 4, 3, padding=1, dtype=np.float64), nc.BatchNorm2d(4, dtype=np.float64),
                          nc.ReLU(), nc.Flatten(), nc.Linear(4 * 8 * 8, 5, dtype=np.float64),
                          nc.BatchNorm1d(5, dtype=np.float64))
    return model


def bn_data():
    rng = np.random.default_rng(7)
    return rng.random((84, 1, 8, 8)), rng.integers(0, 5, 84)


def bn_run(trainer_class, **options):
    """The run every mode trains: 84 samples in global batches of 12 (7 steps an epoch), 2 epochs."""
    model = bn_model()
    trainer = trainer_class(model, None, optim.SGD(model, lr=0.1), seed=5, progress=False, **options)
    x, y = bn_data()
    trainer.fit(x, y, epochs=2, batch_size=12)
    return trainer


class NoAllreduce(distributed.DistributedTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hooks.remove(self.allreduce)


class Fault(nc.train.Hook):
    def __init__(self, mode):
        self.mode = mode

    def after_epoch(self, trainer):
        if trainer.rank == 1 and self.mode == "raise":
            raise RuntimeError("a fault on purpose")
        if trainer.rank == 1 and self.mode == "hang":
            time.sleep(600)


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    with distributed.abort_on_error():
        if mode == "no-allreduce":
            trainer = bn_run(NoAllreduce, sync_bn=True)
        elif mode in ("raise", "hang"):
            trainer = bn_run(distributed.DistributedTrainer, hooks=[Fault(mode)])
        else:
            trainer = bn_run(distributed.DistributedTrainer, sync_bn=mode == "sync-bn")
        if trainer.rank == 0:
            np.savez(out, **state_dict(trainer.model))
