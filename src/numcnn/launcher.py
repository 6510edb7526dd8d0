"""``numcnn train --processes N``: start the ranks through mpiexec, run one rank, report faults.

The command-line side of ``numcnn.distributed`` (which knows nothing of the command line).

Two roles of the same command:

* the launcher (``--processes N`` or ``--hosts``, not under MPI): checks what it can before any
  work, then runs ``mpiexec -n N python -m numcnn train ...`` with the same arguments, each rank
  computing with cores / N threads (``distributed.job``). It passes the ranks' output through,
  keeps MPI's multi-line termination banner out of it, and ends a failed job with one ``error:``
  line that names the rank.
* a rank (started by any MPI launcher, on one host or many): trains with a
  ``DistributedTrainer``. Any exception, Ctrl-C included, ends the whole job through
  ``MPI_Abort``, after the rank has said why.

If a rank dies (killed, out of memory), MPICH's mpiexec ends every other rank at once; a rank
that waits on a collective longer than the deadline (see ``comm``) raises and aborts the job.
The last checkpoint stays on disk, and ``--resume`` continues from it. With ``--max-restarts K``
the launcher does that itself: it starts the job again from the last checkpoint, up to K
times, saying each time which rank failed, why, and where the run goes on from; with ``--hosts``
it first finds which hosts are reachable (``distributed.hosts``), and with ``--min-processes M``
goes on with fewer ranks when a host is gone. Ctrl-C, and a failure that a restart would only
meet again (a mistake in the settings or the data), are never restarted.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import warnings
from pathlib import Path

from . import commands, rundir, runtime
from .checkpoint import describe_saved, read_checkpoint
from .distributed import hosts as mpi_hosts
from .distributed.abort import ATTEMPT_VAR, REPORT_VAR, abort_on_error
from .distributed.comm import Comm, import_mpi, launched_size
from .distributed.fault import hook_from_environment
from .distributed.job import BANNER, run_job
from .errors import ConfigError

# Set by the launcher when its stderr is a terminal: rank 0 then shows its progress bar, which
# reaches the terminal through mpiexec and the launcher's relay.
TERMINAL_VAR = "NUMCNN_MPI_TERMINAL"
# The launcher's own flags, which the ranks do not get (each takes a value).
LAUNCHER_FLAGS = ("--processes", "--max-restarts", "--min-processes", "--hosts", "--hostfile")
__all__ = ["train", "find_mpiexec", "launch", "run_rank", "BANNER", "LAUNCHER_FLAGS"]


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


def _without(argv: list[str], flags: tuple[str, ...], switches: tuple[str, ...] = ()) -> list[str]:
    """argv without the given flags and their values (``--flag V`` or ``--flag=V``), and without
    the given switches (flags that take no value)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif arg not in switches and not arg.startswith(tuple(f"{flag}=" for flag in flags)):
            out.append(arg)
    return out


def _rank_argv(argv: list[str]) -> list[str]:
    """The command line a rank runs: the launcher's flags left out (the ranks are the processes)."""
    return _without(argv, LAUNCHER_FLAGS)


def _resume_argv(argv: list[str], out: Path) -> list[str]:
    """The rank command line that continues the run in out from its checkpoint: --resume out in
    place of --out and --overwrite; the other settings stay, and must match the run's."""
    if any(arg == "--resume" or arg.startswith("--resume=") for arg in argv):
        return argv
    return [*_without(argv, ("--out",), ("--overwrite",)), "--resume", str(out)]

def _check_before_launch(args) -> tuple[Path, int]:
    """Every check that needs no data, made once here rather than N times; returns the run
    folder and the global batch size."""
    from . import recipe
    from .distributed.trainer import check_shards

    n = _wanted(args)
    rundir.check_flags(args.resume, args.out, args.overwrite)
    if args.resume:
        batch_size = int(_resumed_config(args)["config"].get("batch_size", 0)) or 1
        out = Path(args.resume)
    else:
        config = recipe.settings(commands.given(args))
        batch_size = config["batch_size"]
        out = commands.claim_run_folder(args.out, config, args.overwrite)
        if args.out is None:
            args.argv = [*args.argv, "--out", str(out)]  # the ranks must agree on the folder
    check_shards(batch_size, batch_size, n)  # the global batch must divide among the ranks
    return out, batch_size


def _hosts(args) -> list[mpi_hosts.Host] | None:
    """The hosts --hosts or --hostfile names (the file read anew each time), or None."""
    if args.hosts and args.hostfile:
        raise ConfigError("--hosts and --hostfile: give one of them")
    if args.hostfile:
        return mpi_hosts.read_hostfile(args.hostfile)
    return mpi_hosts.parse_hosts(args.hosts) if args.hosts else None


def _wanted(args) -> int:
    """The ranks asked for: --processes, else every slot of the hosts; checks --min-processes."""
    hosts = _hosts(args)
    slots = sum(host.slots for host in hosts) if hosts else None
    n = args.processes or slots
    if slots is not None and n > slots:
        raise ConfigError(f"--processes {n}: the hosts have {slots} slots; name more hosts or slots, or start fewer")
    if args.min_processes is not None and hosts is None:
        raise ConfigError("--min-processes goes with --hosts or --hostfile: on this machine alone every slot "
                          "is always there")
    if args.min_processes is not None and args.min_processes > n:
        raise ConfigError(f"--min-processes {args.min_processes} is more than the {n} processes asked for")
    return n

def _resumed_config(args) -> dict:
    """The checkpoint's record of the run --resume names; a ConfigError if --sync-bn asks for
    what the run was not trained with. A damaged checkpoint is not warned of here: rank 0's
    trainer says so, once."""
    _, meta = read_checkpoint(args.resume, warn=False)
    if args.sync_bn and not meta["config"].get("sync_bn", False):
        raise ConfigError(f"{args.resume} was trained without --sync-bn; resume it without the flag")
    return meta


def launch(args) -> int:
    """Run the training as an MPI job on this host or the hosts named, starting it again from
    its last checkpoint after a failure, up to --max-restarts times; returns the exit status."""
    import_mpi()
    mpiexec = find_mpiexec()
    out, batch_size = _check_before_launch(args)
    env = dict(os.environ)
    # In the run folder, which every host sees; a rank makes it if it is not there yet.
    report = Path(env.get(REPORT_VAR) or out / rundir.RANKS)
    report.mkdir(parents=True, exist_ok=True)
    env[REPORT_VAR] = str(report)
    if sys.stderr.isatty():
        env[TERMINAL_VAR] = "1"
    restarts, attempt, argv, n, outcome = args.max_restarts or 0, 0, _rank_argv(args.argv), None, None
    try:
        while True:
            try:
                n, placed = _placement(args, mpiexec, batch_size, n)
            except ConfigError as exc:
                if outcome is None:
                    raise
                stop = f"the restart cannot start: {exc}"  # the hosts that are left are too few
                break
            if placed is None and args.threads is None and runtime.ENV_VAR not in os.environ:
                env[runtime.ENV_VAR] = str(runtime.cores_per_process(n))
            hosts = ["-hosts", mpi_hosts.hosts_argument(placed)] if placed else []
            command = [mpiexec, *hosts, "-n", str(n), sys.executable, "-m", "numcnn", *argv]
            outcome = run_job(command, {**env, ATTEMPT_VAR: str(attempt)}, report)
            if outcome.ok:
                return 0
            if not outcome.restartable:
                stop = "" if outcome.interrupted or not restarts else "not restarted: a restart would meet it again"
                break
            if attempt >= restarts:
                stop = f"stopped after {attempt} restart{'s' * (attempt != 1)}" if restarts else ""
                break
            attempt += 1
            commit = describe_saved(out)
            argv = _resume_argv(argv, out) if commit else argv
            print(f"restart {attempt} of {restarts}: {outcome.why}; restarting from "
                  f"{commit or 'the start (nothing was saved yet)'}", file=sys.stderr, flush=True)
    finally:
        if REPORT_VAR not in os.environ:  # ours, not a folder the caller asked for
            shutil.rmtree(report, ignore_errors=True)
    commit = describe_saved(out)
    line = "; ".join(filter(None, [outcome.why, stop]))
    if commit and "--resume" not in line:
        line += f"; {commit} is kept: numcnn train --resume {out} --processes {n}{_hosts_flag(args)}"
    print(f"error: {line}", file=sys.stderr, flush=True)
    return 130 if outcome.interrupted else 2


def _hosts_flag(args) -> str:
    """The --hosts or --hostfile the job was given, as a resume command line repeats it."""
    if args.hostfile:
        return f" --hostfile {args.hostfile}"
    return f" --hosts {args.hosts}" if args.hosts else ""


def _placement(args, mpiexec: str, batch_size: int, before: int | None) -> tuple[int, list | None]:
    """(ranks to start, the hosts to start them on or None for this machine alone); with hosts,
    those reachable now, and fewer ranks than asked for when --min-processes allows it (said)."""
    hosts, wanted = _hosts(args), _wanted(args)
    if hosts is None:
        return wanted, None
    before = before or wanted
    down = mpi_hosts.unreachable(hosts, mpiexec)
    slots = sum(host.slots for host in hosts if host.name not in down)
    why = "; ".join(f"{name}: {reason}" for name, reason in down.items())
    try:
        n = mpi_hosts.rank_count(wanted, args.min_processes or wanted, batch_size, slots)
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({why})" if why else str(exc)) from None
    if n != before:
        print(f"note: starting {n} processes, not {before}{f' ({why})' if why else ''}: the global batch "
              f"stays {batch_size}, and so does the learning rate; each process now takes {batch_size // n} "
              f"images of it instead of {batch_size // before}", flush=True)
    return n, mpi_hosts.place(hosts, n, down)


# -- a rank ------------------------------------------------------------------------------------
def run_rank(args) -> int:
    """Train as this rank of the MPI job; on any failure, say so and abort the whole job."""
    with abort_on_error() as comm:
        commands.quiet(comm.rank != 0)
        if comm.rank != 0:  # rank 0 speaks for the job, warnings included
            warnings.simplefilter("ignore")
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
        # One rank checks the run folder and names it for all; each rank's trainer then prepares
        # it as the run starts (--overwrite removes an old checkpoint).
        config = recipe.settings(commands.given(args))
        args.out = str(commands.claim_run_folder(args.out, config, args.overwrite))
    if not args.resume:
        args.out = comm.broadcast_json(args.out, what="the run folder")  # the others wait for rank 0's folder
        args.overwrite = True  # rank 0 found it free, or was told to replace what it holds
    return commands.cmd_train(args, trainer_class=trainer_class, hooks=hook_from_environment())

