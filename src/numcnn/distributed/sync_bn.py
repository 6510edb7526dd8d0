"""Batch norm with the statistics of the global batch: the sums of every rank, all-reduced.

By default each rank normalises with its own shard's statistics (as PyTorch's DDP does). With
``sync_batch_norm(model, comm, weight)`` every BatchNorm layer of the model sums its per-channel
sums over the ranks, so the statistics, the running statistics and the gradients are those of
one process seeing the whole global batch. The forward pass all-reduces twice (the sum with the
count, then the sum of squared deviations from the global mean: the two-pass variance is exact
where E[x^2] - E[x]^2 would cancel), the backward pass once (its two per-channel sums together).

The arithmetic is the one batch-norm kernel's (``functional.batch_norm_forward``): this module
only gives each layer the ``reduce`` callable that kernel takes, so the architecture, state
dict and saved model stay a plain BatchNorm's.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..layers import BatchNorm


def sync_batch_norm(model, comm, weight: Callable[[], float]) -> int:
    """Make every BatchNorm layer of model use global batch statistics; returns how many.

    Parameters
    ----------
    comm : Comm
        A ``numcnn.distributed.Comm``.
    weight
        this rank's share of the current global batch, n_rank / n_global (the loss on a
        rank is its shard's mean, so its gradients are 1 / weight times its share)
    """
    count = 0
    for name, layer in model.named_layers():
        if isinstance(layer, BatchNorm):
            layer.reduce = _reducer(comm, weight, f"{type(layer).__name__} {name}".strip())
            count += 1
    return count


def _reducer(comm, weight: Callable[[], float], name: str):
    def reduce(sums: np.ndarray, kind: str) -> np.ndarray:
        """(k,) per-channel sums of this rank -> their totals over every rank."""
        sums = np.ascontiguousarray(sums)
        if kind == "forward":
            return comm.allreduce_sum(sums, f"{name} statistics")
        # This rank's dout is the gradient of its shard's mean loss, 1/share times its part of
        # the global mean's: summed at the global scale, then brought back to this rank's.
        share = sums.dtype.type(weight())
        total = comm.allreduce_sum(sums * share, f"{name} gradient sums")
        return total / share

    return reduce
