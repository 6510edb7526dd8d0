"""The processes of a job and the three collectives training needs, over mpi4py.

Every collective moves contiguous NumPy buffers with MPI's buffer interface (upper-case
``Iallreduce``/``Ibcast``/``Igatherv``), never pickled objects: the small JSON states a
checkpoint records travel as UTF-8 bytes (``gather_json``, ``broadcast_json``).

Why not the blocking ``Allreduce``: a rank whose peer has died waits in it for ever, inside C,
where neither Ctrl-C nor a timer reaches it. ``allreduce_sum`` starts a non-blocking
``Iallreduce`` and polls it from Python, so a deadline (``NUMCNN_COLLECTIVE_TIMEOUT`` seconds,
default 120) and Ctrl-C both end the wait with an exception; the rank's main then calls
``Abort``, which ends every rank of the job.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from ..errors import ConfigError, NumcnnError

TIMEOUT_VAR = "NUMCNN_COLLECTIVE_TIMEOUT"
DEFAULT_TIMEOUT = 120.0
# The job size, as MPI launchers set it in every rank: PMI (MPICH's Hydra, Intel MPI, Slurm's srun
# with PMI-2) and Open MPI.
SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


class CollectiveTimeout(NumcnnError):
    """A collective did not complete within the deadline: a peer is gone or stuck."""


def launched_size() -> int:
    """The number of ranks an MPI launcher started this process among (1 when not under one).

    Read from the launcher's environment, so it costs nothing and needs no mpi4py.
    """
    for var in SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 1


def import_mpi():
    """mpi4py's MPI module, or one ConfigError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ConfigError(f"training on several processes needs mpi4py and an MPI library ({exc}); "
                          f"pip install 'numcnn[mpi]'") from None
    return MPI


def timeout_seconds() -> float:
    text = os.environ.get(TIMEOUT_VAR)
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_VAR} must be a number of seconds > 0, got {text!r}")
    return value


_world: "Comm | None" = None


def world() -> "Comm":
    """The Comm of every process of the job (MPI's COMM_WORLD), made on first use."""
    global _world
    if _world is None:
        _world = Comm()
    return _world


def rank() -> int:
    """This process's rank in the job: 0 .. size() - 1."""
    return world().rank


def size() -> int:
    """The number of processes in the job (1 when not started by an MPI launcher)."""
    return world().size


class Comm:
    """One MPI communicator with numcnn's collectives.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        Default MPI.COMM_WORLD.
    timeout
        seconds a collective may take before CollectiveTimeout (default: see module doc)
    """

    def __init__(self, comm=None, timeout: float | None = None):
        MPI = import_mpi()
        self.mpi = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = timeout_seconds() if timeout is None else float(timeout)

    def local_size(self) -> int:
        """How many ranks of this communicator run on this host (shared-memory node)."""
        node = self.comm.Split_type(self.mpi.COMM_TYPE_SHARED)
        try:
            return node.Get_size()
        finally:
            node.Free()

    def _wait(self, request, what: str) -> None:
        # Poll the request. Sleeping between polls leaves the cores to the other ranks' compute;
        # the sleep grows from nothing to 1 ms, so a fast collective is not slowed.
        deadline = time.monotonic() + self.timeout
        pause = 0.0
        while not request.Test():
            if time.monotonic() > deadline:
                raise CollectiveTimeout(f"{what} did not complete within {self.timeout:g} s on rank {self.rank} "
                                        f"of {self.size}: another rank has stopped or hangs "
                                        f"(set {TIMEOUT_VAR} to wait longer)")
            time.sleep(pause)
            pause = min(1e-3, pause * 2 + 1e-5)

    def allreduce_sum(self, buffer: np.ndarray, what: str = "all-reduce") -> np.ndarray:
        """Sum buffer over all ranks, in place; returns it. buffer: a contiguous 1-D float array."""
        if self.size > 1:
            self._wait(self.comm.Iallreduce(self.mpi.IN_PLACE, buffer, op=self.mpi.SUM), what)
        return buffer

    def broadcast(self, buffer: np.ndarray, root: int = 0, what: str = "broadcast") -> np.ndarray:
        """Overwrite buffer (a contiguous array, the same shape and dtype on every rank) with
        root's, in place; returns it."""
        if self.size > 1:
            self._wait(self.comm.Ibcast(buffer, root=root), what)
        return buffer

    def gather_json(self, obj, root: int = 0, what: str = "gather") -> list | None:
        """[obj of rank 0, rank 1, ...] on root, None elsewhere; obj: anything json.dumps takes.

        The sizes go first (an all-gather of one int64 each), then the bytes (a gather into
        one buffer at their offsets); both wait under the deadline like every collective.
        """
        data = np.frombuffer(json.dumps(obj).encode(), np.uint8)
        if self.size == 1:
            return [obj]
        sizes = np.zeros(self.size, np.int64)
        self._wait(self.comm.Iallgather(np.array([data.size], np.int64), sizes), f"{what} (sizes)")
        received = np.empty(int(sizes.sum()), np.uint8) if self.rank == root else None
        target = [received, sizes.tolist()] if self.rank == root else None
        self._wait(self.comm.Igatherv(data, target, root=root), what)
        if self.rank != root:
            return None
        ends = np.cumsum(sizes)
        return [json.loads(received[end - size:end].tobytes()) for size, end in zip(sizes, ends)]

    def broadcast_json(self, obj, root: int = 0, what: str = "broadcast") -> object:
        """root's obj on every rank (anything json.dumps takes), under the deadline."""
        if self.size == 1:
            return obj
        data = np.frombuffer(json.dumps(obj).encode(), np.uint8) if self.rank == root else None
        size = np.array([data.size if data is not None else 0], np.int64)
        self.broadcast(size, root, f"{what} (size)")
        buffer = data.copy() if data is not None else np.empty(int(size[0]), np.uint8)
        self.broadcast(buffer, root, what)
        return json.loads(buffer.tobytes())

    def abort(self, code: int) -> None:
        """End every rank of the job now (MPI_Abort); never returns."""
        self.comm.Abort(code)
