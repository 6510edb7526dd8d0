"""``numcnn train --processes N``: start the ranks through mpiexec, run one rank, report faults.

The command-line side of ``numcnn.distributed`` (which knows nothing of the command line).

Two roles of the same command:

* the launcher (``--processes N``, not under MPI): checks what it can before any work, then runs
  ``mpiexec -n N python -m numcnn train ...`` with the same arguments, each rank computing with
  cores / N threads. It passes the ranks' output through, keeps MPI's multi-line termination
  banner out of it, and ends a failed job with one ``error:`` line that names the rank.
* a rank (started by any MPI launcher, on one host or many): trains with a
  ``DistributedTrainer``. Any exception, Ctrl-C included, ends the whole job through
  ``MPI_Abort``, after the rank has said why.

If a rank dies (killed, out of memory), MPICH's mpiexec ends every other rank at once; a rank
that waits on a collective longer than the deadline (see ``comm``) raises and aborts the job.
The checkpoint of the last completed epoch stays on disk, and ``--resume`` continues from it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

from . import commands, rundir, runtime
from .distributed.abort import REPORT_VAR, abort_on_error
from .distributed.comm import Comm, import_mpi, launched_size
from .errors import ConfigError
from .train import read_checkpoint

# Set by the launcher when its stderr is a terminal: rank 0 then shows its progress bar, which
# reaches the terminal through mpiexec and the launcher's relay.
TERMINAL_VAR = "NUMCNN_MPI_TERMINAL"
# Lines of MPICH's and Open MPI's own termination messages, which the launcher replaces with one line.
BANNER = re.compile(r"^(=+|=\s.*|YOUR APPLICATION TERMINATED.*|This typically refers.*|Please see the FAQ.*|"
                    r"Abort\(\d+\) on node.*|application called MPI_Abort.*|\[mpiexec@.*|-+|\s*)$")


def train(args) -> int:
    """The ``train`` command with --processes N (launch), or on a rank of an MPI job."""
    if getattr(args, "device", "cpu") != "cpu":
        raise ConfigError(f"--device {args.device}: training on several processes works on the CPU only "
                          f"(the gradient all-reduce sends NumPy buffers)")
    if launched_size() > 1:
        return run_rank(args)
    return launch(args)


# -- the launcher ------------------------------------------------------------------------------
def find_mpiexec() -> str:
    """The mpiexec of the MPI that mpi4py uses: the one installed beside this Python (the mpich
    wheel puts it in the environment's bin/), else the first on PATH."""
    here = Path(sysconfig.get_path("scripts")) / "mpiexec"
    beside = Path(sys.executable).parent / "mpiexec"
    for path in (beside, here):
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("mpiexec")
    if found is None:
        raise ConfigError("--processes needs MPI's mpiexec, found neither beside this Python nor on PATH; "
                          "pip install 'numcnn[mpi]'")
    return found


def _rank_argv(argv: list[str]) -> list[str]:
    """The command line without --processes N (the ranks are the processes)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            out.append(arg)
    return out


def _check_before_launch(args) -> Path:
    """Every check that needs no data, made once here rather than N times; returns the run folder."""
    from . import recipe
    from .distributed.trainer import check_shards

    n = args.processes
    rundir.check_flags(args.resume, args.out, args.overwrite)
    if args.resume:
        batch_size = int(_resumed_config(args)["config"].get("batch_size", 0)) or 1
        out = Path(args.resume)
    else:
        config = recipe.settings(commands.given(args))
        batch_size = config["batch_size"]
        out = rundir.start(args.out or rundir.default(config["model"], config["dataset"]), args.overwrite)
        if args.out is None:
            args.argv = [*args.argv, "--out", str(out)]  # the ranks must agree on the folder
    check_shards(batch_size, batch_size, n)  # the global batch must divide among the ranks
    return out


def _resumed_config(args) -> dict:
    """The checkpoint's record of the run --resume names; a ConfigError if --sync-bn asks for
    what the run was not trained with."""
    _, meta = read_checkpoint(args.resume)
    if args.sync_bn and not meta["config"].get("sync_bn", False):
        raise ConfigError(f"{args.resume} was trained without --sync-bn; resume it without the flag")
    return meta


def launch(args) -> int:
    """Run the training as N ranks of an MPI job on this host; returns the exit status."""
    import_mpi()
    mpiexec = find_mpiexec()
    out = _check_before_launch(args)
    n = args.processes
    env = dict(os.environ)
    if args.threads is None and runtime.ENV_VAR not in env:
        env[runtime.ENV_VAR] = str(runtime.cores_per_process(n))
    report = Path(env.get(REPORT_VAR) or tempfile.mkdtemp(prefix="numcnn-mpi-"))
    report.mkdir(parents=True, exist_ok=True)
    env[REPORT_VAR] = str(report)
    if sys.stderr.isatty():
        env[TERMINAL_VAR] = "1"
    command = [mpiexec, "-n", str(n), sys.executable, "-m", "numcnn", *_rank_argv(args.argv)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    banner: list[str] = []
    relays = [threading.Thread(target=_relay, args=(source, target, banner), daemon=True)
              for source, target in ((process.stdout, sys.stdout), (process.stderr, sys.stderr))]
    for relay in relays:
        relay.start()
    interrupted = False
    try:
        status = process.wait()
    except KeyboardInterrupt:  # mpiexec got the same Ctrl-C and passes it to the ranks
        interrupted = True
        status = _wait_or_kill(process)
    for relay in relays:
        relay.join(timeout=5)
    if status == 0 and not interrupted:
        _clean(report, env)
        return 0
    line = _failure(report, banner, status, interrupted)
    _clean(report, env)
    kept = out is not None and (Path(out) / rundir.CHECKPOINT).exists()
    resume = ("" if "--resume" in line or not kept else
              f"; the last completed epoch's checkpoint is kept: numcnn train --resume {out} --processes {n}")
    print(f"error: {line}{resume}", file=sys.stderr, flush=True)
    return 130 if interrupted or "interrupted" in line else 2


def _wait_or_kill(process, grace: float = 20.0) -> int:
    try:
        return process.wait(timeout=grace)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        process.kill()  # mpiexec's own cleanup ends its ranks
        return process.wait()


def _clean(report: Path, env: dict) -> None:
    if REPORT_VAR not in os.environ:  # ours, not a folder the caller asked for
        shutil.rmtree(report, ignore_errors=True)


def _relay(stream, target, banner: list[str]) -> None:
    """Copy the ranks' output (mpiexec's stdout or stderr) to target as it comes, progress bars
    included, keeping MPI's termination banner lines in ``banner`` instead."""
    pending = ""
    while True:
        chunk = os.read(stream.fileno(), 65536)
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


def _rank_files(report: Path, suffix: str) -> dict[int, str]:
    found = {}
    for path in report.glob(f"rank-*.{suffix}"):
        try:
            text = path.read_text().strip()
            if text:  # a file still being written says nothing yet
                found[int(path.name.split("-")[1].split(".")[0])] = text
        except (ValueError, OSError):
            continue
    return found


def _failure(report: Path, banner: list[str], status: int, interrupted: bool) -> str:
    """One line saying which rank failed and why."""
    errors = _rank_files(report, "error")
    first = [r for r in sorted(errors) if "did not complete within" not in errors[r]]
    if first:
        return errors[first[0]]
    text = "\n".join(banner)
    pid = re.search(r"PID (\d+)", text)
    code = re.search(r"EXIT CODE: (\d+)", text)
    if pid:
        pids = {int(p): r for r, p in _rank_files(report, "pid").items() if p.isdigit()}
        rank = pids.get(int(pid.group(1)))
        who = f"rank {rank} (pid {pid.group(1)})" if rank is not None else f"process {pid.group(1)}"
        number = int(code.group(1)) if code else None
        how = (f"was killed by signal {number} ({signal.Signals(number).name})"
               if number in {s.value for s in signal.Signals} and number > 2 else f"exited with status {number}")
        return f"{who} {how}; every rank of the job was stopped"
    if errors:
        return errors[min(errors)]
    if interrupted:
        return "interrupted; every rank was stopped"
    return f"mpiexec exited with status {status}"


# -- a rank ------------------------------------------------------------------------------------
def run_rank(args) -> int:
    """Train as this rank of the MPI job; on any failure, say so and abort the whole job."""
    with abort_on_error() as comm:
        commands.quiet(comm.rank != 0)
        if comm.rank == 0 and os.environ.get(TERMINAL_VAR) == "1":
            sys.stderr = _Terminal(sys.stderr)
        _set_rank_threads(args, comm)
        return _train_rank(args, comm)


class _Terminal:
    """A stream that says it is a terminal: rank 0's stderr, relayed to the launcher's terminal."""

    def __init__(self, stream):
        self._stream = stream

    def isatty(self) -> bool:
        return True

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _set_rank_threads(args, comm: Comm) -> None:
    """Without --threads or NUMCNN_NUM_THREADS, the ranks of one host share its cores evenly."""
    if args.threads is None and runtime.ENV_VAR not in os.environ:
        runtime.configure(threads=runtime.cores_per_process(comm.local_size()))


def _train_rank(args, comm: Comm) -> int:
    from . import recipe
    from .distributed.trainer import DistributedTrainer

    trainer_class = DistributedTrainer.with_options(sync_bn=bool(args.sync_bn))
    if args.resume:
        _resumed_config(args)
    elif comm.rank == 0:
        # One rank prepares the run folder (--overwrite removes an old checkpoint) before the
        # others look at it.
        config = recipe.settings(commands.given(args))
        args.out = str(rundir.start(args.out or rundir.default(config["model"], config["dataset"]), args.overwrite))
    if not args.resume:
        args.out = comm.broadcast_json(args.out, what="the run folder")  # the others wait for rank 0's folder
        args.overwrite = True  # it is ready: an old checkpoint is gone
    return commands.cmd_train(args, trainer_class=trainer_class)

