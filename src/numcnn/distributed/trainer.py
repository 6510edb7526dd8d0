"""Data-parallel training: sharded batches, the gradient all-reduce, and the Trainer that uses them.

Every rank holds the whole model and draws the same global batches, in the same shuffled order
one process would draw them (the loader's generator is seeded alike on every rank). Rank r
trains on its contiguous slice of each global batch; its loss is the mean over that slice, so
its gradients, times its share n_r / n of the global batch and summed over the ranks, are
exactly the gradients of the global batch's mean loss that one process computes.
"""

from __future__ import annotations

import math
import time
from typing import Iterator

import numpy as np

from ..data.loader import EpochPlace, as_float_images, as_generator, check_batching
from ..errors import ConfigError, DataError
from ..inference import evaluate
from ..train import Hook, Trainer
from .comm import Comm, world
from .sync_bn import sync_batch_norm


SUMS = ("seen", "loss_sum", "correct")  # an epoch's running totals, kept by each rank for its slices


def check_shards(n: int, batch_size: int, size: int) -> None:
    """ConfigError unless every rank gets at least one sample of every global batch.

    Parameters
    ----------
    n
        training samples; batch_size : the global batch; size : the number of processes
    """
    if batch_size % size:
        raise ConfigError(f"the global batch size {batch_size} does not divide among {size} processes: "
                          f"use a multiple of {size} (e.g. {max(size, batch_size - batch_size % size)}); a resumed "
                          f"run keeps its batch size, so resume it on a process count that divides {batch_size}")
    last = n % batch_size
    if n < size or 0 < last < size:
        raise ConfigError(f"the last batch of each epoch holds {last or n} of the {n} training samples, "
                          f"less than one per process for {size} processes: change --limit or --batch-size")


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous slice of n samples; slices differ in length by at most 1."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class ShardedLoader:
    """This rank's slices of the global batches that ``DataLoader(x, y, batch_size, ...)`` draws.

    Iterating yields (xb, yb) of (about) batch_size / size samples. ``weight`` is the share
    n_rank / n_global of the batch last yielded. ``rng`` draws the shuffle order and the
    augmentations, the same on every rank; with augmentation the whole global batch is
    augmented and then sliced, so every image gets the transform it gets in one process.

    Parameters
    ----------
    x : ndarray, shape (N, ...)
        The samples, as for DataLoader, such as (N, C, H, W) images.
    y : ndarray, shape (N, ...)
        Their labels or targets.
    batch_size : int
        The global batch, over all processes.
    rank : int
        This process, in [0, size).
    size : int
        The number of processes.
    shuffle : bool, default True
        Draw a new order every epoch.
    seed : int, Generator or None, default None
        Seeds the shuffle and the augmentations; give every rank the same one.
    augment : callable or None, default None
        A batch augmentation ``(xb, rng) -> xb``, as DataLoader takes it.
    """

    def __init__(self, x, y, batch_size: int, rank: int, size: int, shuffle: bool = True, seed=None,
                 augment=None):
        self.x, self.y = check_batching(x, y, batch_size, augment)
        check_shards(len(self.x), int(batch_size), size)
        self.batch_size, self.rank, self.size = int(batch_size), rank, size
        self.shuffle, self.augment = shuffle, augment
        self.rng = as_generator(seed)
        self.place = EpochPlace()
        self.weight = 1.0 / size

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(self.x)
        order, first = self.place.begin(self.rng, n, self.shuffle)
        order = np.arange(n) if order is None else order
        for start in range(first * self.batch_size, n, self.batch_size):
            batch = order[start:start + self.batch_size]
            lo, hi = shard_bounds(len(batch), self.rank, self.size)
            self.weight = (hi - lo) / len(batch)
            if self.augment is None:
                mine = batch[lo:hi]
                yield as_float_images(self.x[mine]), self.y[mine]
            else:
                xb = self.augment(as_float_images(self.x[batch]), self.rng)
                yield xb[lo:hi], self.y[batch[lo:hi]]


def _float_arrays(model, params: bool) -> list[tuple[dict, str]]:
    """(store, key) of every float buffer, and of every float parameter first if params, in model order."""
    found = []
    for _, layer in model.named_layers():
        stores = (layer.params, layer.buffers) if params else (layer.buffers,)
        for store in stores:
            found.extend((store, key) for key, value in store.items() if value.dtype.kind == "f")
    return found


def _broadcast_arrays(comm: Comm, entries: list[tuple[dict, str]], what: str) -> None:
    if not entries or comm.size == 1:
        return
    arrays = [store[key] for store, key in entries]
    flat = np.concatenate([a.ravel().astype(np.float64) for a in arrays])
    comm.broadcast(flat, 0, what)
    offset = 0
    for (store, key), a in zip(entries, arrays):
        store[key] = flat[offset:offset + a.size].reshape(a.shape).astype(a.dtype)
        offset += a.size


def broadcast_parameters(model, comm: Comm) -> None:
    """Give every rank rank 0's weights and buffers (one fused broadcast, in float64 so either
    float type arrives unchanged)."""
    _broadcast_arrays(comm, _float_arrays(model, params=True), "broadcast of the weights")


def broadcast_buffers(model, comm: Comm) -> None:
    """Give every rank rank 0's float buffers (batch norm's running statistics)."""
    _broadcast_arrays(comm, _float_arrays(model, params=False), "broadcast of the buffers")


class GradientAllreduce(Hook):
    """The Trainer hook that turns each rank's gradients into the global batch's.

    After backward, every gradient is scaled by the rank's share of the global batch (the
    trainer's ``shard_weight()``) and packed into one flat buffer; one ``Allreduce`` sums the
    buffer over the ranks and the sums are written back into the gradient arrays in place.
    ``seconds`` and ``calls`` add up the time spent packing, reducing and unpacking.
    """

    def __init__(self, comm: Comm):
        self.comm = comm
        self._buffer: np.ndarray | None = None
        self.seconds = 0.0
        self.calls = 0

    def after_backward(self, trainer) -> None:
        if self.comm.size == 1:  # one process: its gradients are the global batch's already
            return
        start = time.perf_counter()
        grads = [grad for _, grad in trainer.model.gradients()]
        total = sum(g.size for g in grads)
        dtype = np.result_type(*grads)
        if self._buffer is None or self._buffer.size != total or self._buffer.dtype != dtype:
            self._buffer = np.empty(total, dtype)
        share = dtype.type(trainer.shard_weight())
        offset = 0
        for g in grads:
            np.multiply(g.reshape(-1), share, out=self._buffer[offset:offset + g.size])
            offset += g.size
        self.comm.allreduce_sum(self._buffer, "gradient all-reduce")
        offset = 0
        for g in grads:
            g[...] = self._buffer[offset:offset + g.size].reshape(g.shape)
            offset += g.size
        self.seconds += time.perf_counter() - start
        self.calls += 1


class DistributedTrainer(Trainer):
    """A Trainer whose ranks train one model together, data-parallel over MPI.

    What changes against one process, and what does not:

    * batches: rank r trains on its slice of every global batch (``ShardedLoader``); the
      gradients are all-reduced after every backward (``GradientAllreduce``), so every rank
      takes the same optimizer step. The weights are broadcast from rank 0 at the start.
    * dropout: rank r's random layers draw from streams seeded by (the run's dropout seed, r),
      so the ranks drop different units, as different images in one process would; with
      one process the streams are the Trainer's own.
    * batch norm: per-rank statistics by default; the running statistics are broadcast from
      rank 0 before each evaluation and checkpoint, so every rank evaluates and saves rank 0's.
    * evaluation: each rank evaluates its slice of the set; losses and counts are summed.
    * files and output: only rank 0 logs, shows progress and writes checkpoints; a checkpoint
      holds every rank's random states (``rng.ranks``) and the process count, and one taken in
      the middle of an epoch every rank's running totals of it (``partial.ranks``).

    Parameters
    ----------
    model, loss, optimizer, schedule, seed, out_dir, progress, log, config, schedule_per, hooks, checkpoint_every
        As ``Trainer`` takes them.
    comm : Comm, optional
        Default: every process of the job, MPI's COMM_WORLD.
    sync_bn : bool, optional
        Batch norm with the global batch's statistics (see ``sync_batch_norm``); None takes
        the run's recorded choice (a resumed run), else the class's ``sync_bn_default``.
    """

    sync_bn_default = False

    def __init__(self, model, loss=None, optimizer=None, schedule=None, seed: int = 0, out_dir=None,
                 progress: bool = True, log=None, config=None, schedule_per: str = "epoch", hooks=(),
                 checkpoint_every: int | None = None, comm: Comm | None = None, sync_bn: bool | None = None,
                 overwrite: bool = False):
        if getattr(model, "device", "cpu") != "cpu":
            raise ConfigError(f"DistributedTrainer: the model is on {model.device}; training on several "
                              f"processes works on the CPU only (its buffers go through MPI from host memory)")
        self.comm = comm if comm is not None else world()
        lead = self.comm.rank == 0
        self.allreduce = GradientAllreduce(self.comm)
        self._loader: ShardedLoader | None = None
        self._rank_states: list | None = None
        self._rank_sums: list | None = None
        super().__init__(model, loss, optimizer, schedule, seed=seed, out_dir=out_dir, progress=progress and lead,
                         log=log if lead else None, config=config, schedule_per=schedule_per,
                         hooks=[self.allreduce, *hooks], checkpoint_every=checkpoint_every, overwrite=overwrite)
        if sync_bn is None:
            sync_bn = bool(self.config.get("sync_bn", self.sync_bn_default))
        self.sync_bn = bool(sync_bn)
        self.config.update(processes=self.comm.size, sync_bn=self.sync_bn)
        if self.sync_bn:
            sync_batch_norm(self.model, self.comm, self.shard_weight)
        self._seed_rank_streams()
        broadcast_parameters(self.model, self.comm)

    @classmethod
    def with_options(cls, sync_bn: bool) -> type["DistributedTrainer"]:
        """This class with another default for sync_bn, to hand to ``recipe.build``/``resume``."""
        return type(cls.__name__, (cls,), {"sync_bn_default": bool(sync_bn)})

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    def shard_weight(self) -> float:
        """This rank's share n_rank / n_global of the current global batch."""
        return self._loader.weight if self._loader is not None else 1.0 / self.comm.size

    def _seed_rank_streams(self, *extra: int) -> None:
        if self.comm.size > 1:
            dropout_seed = int(np.random.SeedSequence(self.seed).generate_state(2, np.uint64)[1])
            self.model.seed([dropout_seed, self.comm.rank, *extra])

    # -- the Trainer's seams ----------------------------------------------------------------------
    def make_loader(self, x, y, batch_size, shuffle, seed, augment):
        self._loader = ShardedLoader(x, y, batch_size, self.comm.rank, self.comm.size, shuffle=shuffle,
                                     seed=seed, augment=augment)
        return self._loader

    def epoch_totals(self, seen, loss_sum, correct):
        totals = self.comm.allreduce_sum(np.array([seen, loss_sum, correct], np.float64), "epoch totals")
        if not self.sync_bn:
            broadcast_buffers(self.model, self.comm)
        return int(round(totals[0])), float(totals[1]), int(round(totals[2]))

    def evaluate(self, x, y, batch_size: int = 500) -> dict[str, float]:
        """Mean loss and accuracy over x (N, C, H, W) and y (N,) labels or (N, K) targets, as
        {"loss": float, "accuracy": float}: each rank evaluates its slice, the sums are added."""
        x, y = np.asarray(x), np.asarray(y)
        if len(x) == 0 or len(x) != len(y):
            raise DataError(f"evaluate: expected x and y with the same, non-zero number of samples, "
                            f"got shapes {x.shape} and {y.shape}")
        if not self.sync_bn:
            broadcast_buffers(self.model, self.comm)
        lo, hi = shard_bounds(len(x), self.comm.rank, self.comm.size)
        sums = np.zeros(2, np.float64)
        if hi > lo:
            mine = evaluate(self.model, x[lo:hi], y[lo:hi], self.loss, batch_size)
            sums[:] = mine["loss"] * (hi - lo), mine["accuracy"] * (hi - lo)
        self.comm.allreduce_sum(sums, "evaluation")
        return {"loss": float(sums[0] / len(x)), "accuracy": float(round(sums[1]) / len(x))}

    # -- checkpoints --------------------------------------------------------------------------------
    def _rng_states(self) -> dict:
        return {**super()._rng_states(), "ranks": self._rank_states}

    def _epoch_progress(self) -> dict | None:
        # The epoch's totals so far, summed over the ranks (what one process resuming needs),
        # and each rank's own (what each rank resuming on as many ranks goes on from).
        progress = super()._epoch_progress()
        if progress is None:
            return None
        sums = {key: sum(rank[key] for rank in self._rank_sums) for key in SUMS}
        return {**progress, **sums, "ranks": self._rank_sums}

    def _resume_epoch(self, meta: dict):
        progress = super()._resume_epoch(meta)
        if progress is None:
            return None
        ranks = meta["partial"].get("ranks") or [{key: meta["partial"][key] for key in SUMS}]
        if len(ranks) == self.comm.size:
            mine = ranks[self.comm.rank]
        else:  # another process count: rank 0 carries the totals so far, and the sum comes out right
            mine = {key: sum(rank[key] for rank in ranks) if self.comm.rank == 0 else 0 for key in SUMS}
        for key in SUMS:
            setattr(progress, key, type(getattr(progress, key))(mine[key]))
        return progress

    def save_checkpoint(self):
        """Gather every rank's random states (and, in the middle of an epoch, its running totals);
        rank 0 writes the files (each atomically)."""
        progress = self._in_progress
        mine = {"rng": self.model.rng_states(),
                "sums": {key: getattr(progress, key) for key in SUMS} if progress is not None else None}
        gathered = self.comm.gather_json(mine, what="random states")
        if self.comm.rank != 0:
            return None
        self._rank_states = [rank["rng"] for rank in gathered]
        self._rank_sums = [rank["sums"] for rank in gathered]
        return super().save_checkpoint()

    def load_checkpoint(self, path, checkpoint=None) -> dict:
        """Restore the run; each rank takes its own random states when the process count is the
        run's, and new streams (seeded by the run's seed, the rank and the epoch) when not."""
        meta = super().load_checkpoint(path, checkpoint)
        ranks = meta["rng"].get("ranks") or [meta["rng"].get("model") or {}]
        saved = int(meta["config"].get("processes", len(ranks)))
        if saved == self.comm.size and len(ranks) == saved:
            self.model.set_rng_states(ranks[self.comm.rank])
        elif self.comm.size > 1 or saved > 1:
            self._seed_rank_streams(self.epoch)
            random = [name for name, layer in self.model.named_layers() if layer.rng is not None]
            per_rank_bn = self._has_batch_norm() and not self.sync_bn
            if (random or per_rank_bn) and self.log is not None:
                why = " and ".join(w for w, on in (("dropout masks", random), ("per-process batch norm "
                                   "statistics", per_rank_bn)) if on)
                self.log(f"note: the run was trained on {saved} processes and continues on {self.comm.size}: "
                         f"its {why} differ from an uninterrupted run from here on")
        self.config.update(processes=self.comm.size, sync_bn=self.sync_bn)
        return meta

    def _has_batch_norm(self) -> bool:
        from ..layers import BatchNorm

        return any(isinstance(layer, BatchNorm) for _, layer in self.model.named_layers())
