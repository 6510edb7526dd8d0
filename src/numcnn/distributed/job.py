"""One start of an MPI job from the launcher's side: run ``mpiexec``, pass the ranks' output
through, and say in one line why the job failed.

MPICH's and Open MPI's multi-line termination banners are kept out of the output; the line
comes from what the ranks reported (``abort.read_reports``), else from the banner (which names
the process a signal killed), else from mpiexec's exit status.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import NamedTuple

from .abort import clear_reports, read_reports

# Lines of MPICH's and Open MPI's own termination messages, which the launcher replaces with one line.
BANNER = re.compile(r"^(=+|=\s.*|YOUR APPLICATION TERMINATED.*|This typically refers.*|Please see the FAQ.*|"
                    r"Abort\(\d+\) on node.*|application called MPI_Abort.*|\[mpiexec@.*|\[proxy:.*|-+|\s*)$")


class Outcome(NamedTuple):
    """How one start of the job ended: mpiexec's exit status, whether Ctrl-C stopped it, why it
    failed (one line, "" on success) and whether starting it again could help."""

    status: int
    interrupted: bool
    why: str
    restartable: bool

    @property
    def ok(self) -> bool:
        return self.status == 0 and not self.interrupted


def run_job(command: list[str], env: dict, report: Path) -> Outcome:
    """Run the mpiexec command line until it ends; the ranks write their reports into report."""
    clear_reports(report)
    banner: list[str] = []
    interrupted = False
    # As a context manager, the process's pipes are closed when it has ended.
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        relays = [threading.Thread(target=_relay, args=(source, target, banner), daemon=True)
                  for source, target in ((process.stdout, sys.stdout), (process.stderr, sys.stderr))]
        for relay in relays:
            relay.start()
        try:
            status = process.wait()
        except KeyboardInterrupt:  # mpiexec got the same Ctrl-C and passes it to the ranks
            interrupted = True
            status = _wait_or_kill(process)
        for relay in relays:
            relay.join(timeout=5)
    if status == 0 and not interrupted:
        return Outcome(0, False, "", False)
    why, restartable, stopped = _failure(report, banner, status, interrupted)
    interrupted = interrupted or stopped
    return Outcome(status, interrupted, why, restartable and not interrupted)


def _wait_or_kill(process, grace: float = 20.0) -> int:
    try:
        return process.wait(timeout=grace)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        process.kill()  # mpiexec's own cleanup ends its ranks
        return process.wait()


def _relay(stream, target, banner: list[str]) -> None:
    """Copy the ranks' output (mpiexec's stdout or stderr) to target as it comes, progress bars
    included, keeping MPI's termination banner lines in ``banner`` instead."""
    pending = ""
    while True:
        try:
            chunk = os.read(stream.fileno(), 65536)
        except (OSError, ValueError):  # the pipe closed under it: the job has ended
            break
        if not chunk:
            break
        pending += chunk.decode(errors="replace")
        *lines, pending = pending.split("\n")
        text = []
        for line in lines:
            if BANNER.match(line):
                banner.append(line)
            else:
                text.append(line + "\n")
        if "\r" in pending:  # a progress bar redraws its line with \r: pass it on now
            cut = pending.rindex("\r") + 1
            text.append(pending[:cut])
            pending = pending[cut:]
        if text:
            target.write("".join(text))
            target.flush()
    if pending and not BANNER.match(pending):
        target.write(pending)
        target.flush()


def _failure(report: Path, banner: list[str], status: int, interrupted: bool) -> tuple[str, bool, bool]:
    """(one line saying which rank failed and why, whether a restart could help, whether a
    rank reported Ctrl-C)."""
    pids, errors = read_reports(report)
    raised = [rank for rank in sorted(errors) if not errors[rank].timeout]
    if raised:
        first = errors[raised[0]]
        return first.line, first.restartable, first.interrupted
    text = "\n".join(banner)
    pid = re.search(r"PID (\d+)", text)
    code = re.search(r"EXIT CODE: (\d+)", text)
    if pid:
        rank = {p: r for r, p in pids.items()}.get(int(pid.group(1)))
        who = f"rank {rank} (pid {pid.group(1)})" if rank is not None else f"process {pid.group(1)}"
        number = int(code.group(1)) if code else None
        how = (f"was killed by signal {number} ({signal.Signals(number).name})"
               if number in {s.value for s in signal.Signals} and number > 2 else f"exited with status {number}")
        return f"{who} {how}; every rank of the job was stopped", True, False
    if errors:
        # Only waits past the deadline: the ranks that said nothing are the ones that hung.
        silent = sorted(set(pids) - set(errors))
        first = errors[min(errors)].line
        if silent:
            return f"rank {', '.join(map(str, silent))} stopped answering ({first})", True, False
        return first, True, False
    if interrupted:
        return "interrupted; every rank was stopped", False, True
    return f"mpiexec exited with status {status}", True, False
