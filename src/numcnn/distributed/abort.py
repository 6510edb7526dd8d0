"""A rank's guard: any exception, Ctrl-C included, ends every rank of the job (``MPI_Abort``).

Without it a failing rank would leave the others waiting in their next collective.

Under the ``--processes`` launcher each rank also reports to it through a folder
(``REPORT_VAR``): rank-K.pid when it starts, and rank-K.error when it fails, saying why in one
line and whether starting the job again could help (``read_reports``). This module owns those
names: ``clear_reports`` empties the folder before a start of the job.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

from ..errors import EXIT_ERROR, EXIT_INTERRUPTED, Interrupted, NumcnnError, one_line
from ..io import atomic_write_bytes
from .comm import CollectiveTimeout, Comm, world

# A folder where each rank writes rank-K.pid and, when it fails, rank-K.error. The ``--processes``
# launcher uses one in the run folder (``rundir.RANKS``) unless this variable names one; a rank on
# another host makes it if it is not there yet.
REPORT_VAR = "NUMCNN_MPI_REPORT"
# Which start of the job this is (0 the first, 1 the first restart, ...), set by the launcher.
ATTEMPT_VAR = "NUMCNN_ATTEMPT"
ABORT_GRACE_S = 0.5  # between a rank's error line on stderr and MPI_Abort


class Report(NamedTuple):
    """Why a rank failed: one line, and whether a restart could help (not for a mistake in
    the settings or the data, which would only recur, nor for Ctrl-C); ``timeout`` when it
    waited past the deadline for a peer (the peer, not it, is the cause); ``interrupted`` when
    Ctrl-C stopped it."""

    line: str
    restartable: bool
    timeout: bool
    interrupted: bool


@contextmanager
def abort_on_error(comm: Comm | None = None) -> Iterator[Comm]:
    """Wrap a rank's main: any exception, Ctrl-C included, ends the whole job.

    ::

        with distributed.abort_on_error() as comm:
            ...                     # this rank's work

    The failing rank says why in one ``error: rank R of N: ...`` line on stderr (or, under the
    ``--processes`` launcher, in its report folder, which the launcher reads), then calls
    ``MPI_Abort``, which stops every rank; the other ranks would otherwise wait for it in their
    next collective. With one process the exception propagates as usual.
    """
    comm = comm if comm is not None else world()
    report = os.environ.get(REPORT_VAR)
    try:
        if report:  # inside the try: a folder this rank cannot write still ends the job
            _write(Path(report) / f"rank-{comm.rank}.pid", str(os.getpid()))
        yield comm
    except BaseException as exc:  # noqa: BLE001 - every way out must end the other ranks too
        if comm.size == 1 or (isinstance(exc, SystemExit) and not exc.code):
            raise
        status, message = _describe(exc)
        line = f"rank {comm.rank} of {comm.size}: {message}"
        record = Report(line, _restartable(exc), isinstance(exc, CollectiveTimeout), _interrupted(exc))
        # Written, the launcher reads the report and says it; else this rank says it itself.
        reported = bool(report) and _reported(Path(report) / f"rank-{comm.rank}.error", record)
        if not reported and (comm.rank == 0 or not isinstance(exc, CollectiveTimeout)):
            print(f"error: {line}", file=sys.stderr, flush=True)
            # mpiexec forwards each rank's stderr through its proxy, and MPI_Abort may end the
            # job before the line got through (seen under load): give it a moment first.
            time.sleep(ABORT_GRACE_S)
        comm.abort(status)


def _write(path: Path, text: str) -> None:
    """Write a report file whole (the launcher may read it while this rank is being stopped),
    making its folder first: on another host than the launcher's it may not be there yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())


def _reported(path: Path, record: Report) -> bool:
    """Whether the report could be written (else the rank says it on stderr)."""
    try:
        _write(path, json.dumps(record._asdict()))
    except OSError:
        return False
    return True


def clear_reports(folder) -> None:
    """Remove what the ranks of an earlier start wrote into a report folder (they would name the
    wrong rank)."""
    for old in Path(folder).glob("rank-*.*"):
        old.unlink(missing_ok=True)


def read_reports(folder) -> tuple[dict[int, int], dict[int, Report]]:
    """({rank: pid}, {rank: Report}) of what the ranks wrote into a report folder so far (a
    file still being written counts as not there)."""
    pids, errors = {}, {}
    for path in Path(folder).glob("rank-*.*"):
        try:
            rank = int(path.name.split("-")[1].split(".")[0])
            text = path.read_text().strip()
            if path.suffix == ".pid" and text.isdigit():
                pids[rank] = int(text)
            elif path.suffix == ".error" and text:
                errors[rank] = Report(**json.loads(text))
        except (ValueError, OSError, TypeError):
            continue
    return pids, errors


def _interrupted(exc: BaseException) -> bool:
    return isinstance(exc, (KeyboardInterrupt, Interrupted))


def _restartable(exc: BaseException) -> bool:
    if isinstance(exc, (KeyboardInterrupt, Interrupted, SystemExit)):
        return False
    return isinstance(exc, CollectiveTimeout) or not isinstance(exc, NumcnnError)


def _describe(exc: BaseException) -> tuple[int, str]:
    """(exit status, one-line message) of the exception a rank failed with."""
    if isinstance(exc, Interrupted):
        return EXIT_INTERRUPTED, one_line(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, SystemExit):
        return int(exc.code) if isinstance(exc.code, int) else EXIT_ERROR, f"exited with status {exc.code}"
    if isinstance(exc, (NumcnnError, OSError)):
        return EXIT_ERROR, one_line(exc)
    return EXIT_ERROR, f"{type(exc).__name__}: {one_line(exc)}"
