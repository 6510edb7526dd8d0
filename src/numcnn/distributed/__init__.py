"""Data-parallel training over MPI (mpi4py with MPICH's PyPI wheels: ``pip install 'numcnn[mpi]'``).

::

    numcnn train --model simple-convnet --processes 4             # 4 ranks on this host
    mpiexec -n 8 -hosts a,b numcnn train --model simple-convnet    # 8 ranks on two hosts

From Python, run the script under ``mpiexec -n N python script.py``:

::

    from numcnn import distributed, recipe
    with distributed.abort_on_error():         # a failing rank stops the whole job
        run = recipe.build(settings)
        trainer = run.trainer("runs/x", trainer_class=distributed.DistributedTrainer)
        run.fit(trainer)

``rank()`` and ``size()`` say where this process stands. The pieces, each usable alone, are
``Comm`` (rank, size and the collectives, with a deadline), ``ShardedLoader`` (this rank's slice
of every global batch), ``GradientAllreduce`` (the Trainer hook that sums the gradients in one
fused buffer), ``broadcast_parameters`` and ``sync_batch_norm``. ``DistributedTrainer`` puts them
together; its docstring says what differs from a one-process run: the dropout streams of each
rank, the batch-norm statistics, evaluation and checkpoints.

The launcher's side (``numcnn train --processes``, in ``numcnn.launcher``) uses ``job`` (one start
of the job: mpiexec, its output, why it failed), ``hosts`` (which hosts are reachable, how many
ranks to start) and ``fault`` (faults on purpose, ``NUMCNN_FAULT``, for testing restarts).

The core of numcnn never imports this package, and importing it does not start MPI: mpi4py is
loaded when a ``Comm`` is made.
"""

from .comm import CollectiveTimeout, Comm, launched_size, rank, size, world
from .sync_bn import sync_batch_norm


def __getattr__(name):
    # The trainer pulls in numcnn.train; load it on first use.
    if name == "abort_on_error":
        from .abort import abort_on_error
        return abort_on_error
    if name in ("DistributedTrainer", "GradientAllreduce", "ShardedLoader", "broadcast_parameters",
                "broadcast_buffers", "check_shards", "shard_bounds"):
        from . import trainer
        return getattr(trainer, name)
    raise AttributeError(f"module 'numcnn.distributed' has no attribute {name!r}")


def __dir__():
    # The lazy names too, so that dir(), completion and the API reference list every public name.
    return sorted(set(globals()) | set(__all__))


__all__ = ["CollectiveTimeout", "Comm", "DistributedTrainer", "GradientAllreduce", "ShardedLoader",
           "abort_on_error", "broadcast_buffers", "broadcast_parameters", "check_shards", "launched_size",
           "rank", "shard_bounds", "size", "sync_batch_norm", "world"]
