"""Elastic training over MPI: a failed rank costs a restart from the last checkpoint, not the run.

The jobs run on this host (loopback) through MPICH's mpiexec, with faults put in on purpose by
``NUMCNN_FAULT`` (``numcnn.distributed.fault``): a rank killed, raising or hanging at one step of
the run. Every restarted run must end where one uninterrupted process ends (float64, no dropout
and no batch norm: to 1e-9). Hosts: names that all resolve to this machine, and one that does not.
"""

import json
import os
import socket
import sys

import pytest

from numcnn.checkpoint import read_checkpoint
from numcnn.distributed import abort
from numcnn.distributed.abort import ATTEMPT_VAR, REPORT_VAR, Report, abort_on_error, read_reports
from numcnn.distributed.fault import hook_from_environment
from numcnn.distributed.hosts import Host, parse_hosts, place, rank_count, read_hostfile, unreachable
from numcnn.distributed.job import Outcome, run_job
from numcnn.errors import ConfigError

from test_distributed import (MPIEXEC, RUN, assert_same_weights, error_lines, needs_mpi, numcnn,
                              one_process, weights)

__all__ = ["one_process"]  # the module-scoped reference run, shared with test_distributed

# 240 samples in batches of 60: 4 steps an epoch, 8 in the run. With a checkpoint every 3 steps,
# a fault at step 7 (epoch 2, batch 3) restarts from step 6 (epoch 2, step 2).
ELASTIC = [*RUN, "--epochs", "2", "--checkpoint-every", "3"]


def restart_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("restart ")]


def faulty(*args, fault: str, **env):
    return numcnn("train", *ELASTIC, *args, env={"NUMCNN_FAULT": fault, **env}, timeout=120)


# -- without MPI ----------------------------------------------------------------------------------
def test_host_lists_and_files_are_read_as_mpich_writes_them(tmp_path):
    assert parse_hosts("a:4, b,c:2") == [Host("a", 4), Host("b", 1), Host("c", 2)]
    for bad in ("a:0", "a:x", ":3", "a,,b"):
        with pytest.raises(ConfigError, match="expected HOST or HOST:SLOTS"):
            parse_hosts(bad)
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# the cluster\nnode1:8\n\nnode2  # one slot\n")
    assert read_hostfile(hostfile) == [Host("node1", 8), Host("node2", 1)]
    hostfile.write_text("node1:-2\n")
    with pytest.raises(ConfigError, match=r"hosts:1: expected HOST or HOST:SLOTS"):
        read_hostfile(hostfile)


def test_the_rank_count_is_the_most_reachable_slots_the_batch_divides_among():
    assert rank_count(wanted=8, minimum=2, batch_size=60, slots=8) == 6  # 60 does not divide by 7 or 8
    assert rank_count(wanted=4, minimum=4, batch_size=60, slots=9) == 4
    with pytest.raises(ConfigError, match="only 2 ranks can start on the 2 reachable slots, fewer than "
                                          "--min-processes 3"):
        rank_count(wanted=4, minimum=3, batch_size=60, slots=2)
    hosts = [Host("a", 2), Host("b", 4), Host("c", 4)]
    assert place(hosts, 5, {"b": "down"}) == [Host("a", 2), Host("c", 3)]


def test_a_fault_is_described_in_one_variable_or_refused(monkeypatch):
    monkeypatch.setenv("NUMCNN_FAULT", "rank=1,step=7,kind=hang,attempts=all")
    monkeypatch.delenv(ATTEMPT_VAR, raising=False)
    assert hook_from_environment() == []  # a rank that the launcher did not start ignores it
    monkeypatch.setenv(ATTEMPT_VAR, "0")
    (fault,) = hook_from_environment()
    assert (fault.rank, fault.step, fault.kind, fault.attempts) == (1, 7, "hang", None)
    for bad in ("rank=1,kind=kill", "step=3,kind=explode", "step=3,kind=kill,when=now"):
        monkeypatch.setenv("NUMCNN_FAULT", bad)
        with pytest.raises(ConfigError, match="NUMCNN_FAULT"):
            hook_from_environment()


class OneOfTwo:
    """Rank 1 of a job of 2, whose MPI_Abort is an exception the test can catch."""

    rank, size = 1, 2

    def abort(self, code):
        raise Aborted(code)


class Aborted(Exception):
    pass


def test_a_rank_makes_its_report_folder_when_it_is_not_there_yet(tmp_path, monkeypatch):
    report = tmp_path / "run" / ".ranks"  # as on a host where the launcher has not made it
    monkeypatch.setenv(REPORT_VAR, str(report))
    with pytest.raises(Aborted, match="130"):
        with abort_on_error(OneOfTwo()):
            raise KeyboardInterrupt
    pids, errors = read_reports(report)
    assert pids == {1: os.getpid()}
    assert errors == {1: Report("rank 1 of 2: interrupted", restartable=False, timeout=False, interrupted=True)}


def test_a_rank_that_cannot_write_its_report_says_why_and_still_ends_the_job(tmp_path, monkeypatch, capsys):
    (tmp_path / "run").write_text("a file where the run folder should be")
    monkeypatch.setenv(REPORT_VAR, str(tmp_path / "run" / ".ranks"))
    monkeypatch.setattr(abort, "ABORT_GRACE_S", 0)
    ran = []
    with pytest.raises(Aborted, match="2"):
        with abort_on_error(OneOfTwo()):
            ran.append(True)
    assert not ran
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: rank 1 of 2: ") and "Not a directory" in line, line


def test_the_launcher_tells_ctrl_c_by_the_reports_field_not_its_words(tmp_path):
    report = tmp_path / "ranks"
    report.mkdir()
    stale = Report("rank 0 of 2: interrupted", restartable=False, timeout=False, interrupted=True)
    (report / "rank-0.error").write_text(json.dumps(stale._asdict()))  # an earlier start's: cleared
    for line, interrupted in (("rank 1 of 2: stopped by the user", True),
                              ("rank 1 of 2: OSError: read interrupted by a signal", False)):
        record = Report(line, restartable=not interrupted, timeout=False, interrupted=interrupted)
        script = (f"import pathlib, sys; pathlib.Path({str(report / 'rank-1.error')!r})"
                  f".write_text({json.dumps(record._asdict())!r}); sys.exit(1)")
        outcome = run_job([sys.executable, "-c", script], dict(os.environ), report)
        assert outcome == Outcome(1, interrupted, line, not interrupted)


@needs_mpi
def test_reachable_means_the_name_resolves_and_mpiexec_starts_a_process_there():
    names = ["localhost", "127.0.0.1", socket.gethostname()]
    hosts = [Host(name, 1) for name in [*names, "nosuchhost.invalid"]]
    assert unreachable(hosts, MPIEXEC) == {"nosuchhost.invalid": "its name does not resolve"}


# -- MPI jobs with faults -------------------------------------------------------------------------
@needs_mpi
def test_a_killed_rank_is_restarted_from_the_last_step_checkpoint_and_the_run_ends_as_one_process(
        one_process, tmp_path):
    out = tmp_path / "run"
    result = faulty("--out", out, "--processes", 2, "--max-restarts", 3, fault="rank=1,step=7,kind=kill")
    assert result.returncode == 0, result.stderr
    (line,) = restart_lines(result.stderr)
    assert line.startswith("restart 1 of 3: rank 1 (pid ") and "was killed by signal 9 (SIGKILL)" in line
    assert line.endswith(f"restarting from the checkpoint at epoch 2, step 2 ({out})"), line
    assert not error_lines(result.stderr) and "BAD TERMINATION" not in result.stdout + result.stderr
    assert "resuming" in result.stdout and result.stdout.count("epoch 2/2") == 1
    assert_same_weights(weights(out), weights(one_process))
    assert read_checkpoint(out)[1]["history"]["epoch"] == [1, 2]


@needs_mpi
def test_three_ranks_on_loopback_host_names_without_the_one_that_does_not_resolve(one_process, tmp_path):
    # Four names, five slots: three resolve to this machine; --min-processes lets the job start on
    # the three slots that are reachable, and a rank killed there is restarted on them.
    out = tmp_path / "run"
    hosts = f"localhost:1,127.0.0.1:1,{socket.gethostname()}:1,nosuchhost.invalid:2"
    result = faulty("--out", out, "--hosts", hosts, "--processes", 5, "--min-processes", 2, "--max-restarts", 1,
                    fault="rank=2,step=7,kind=kill")
    assert result.returncode == 0, result.stderr
    assert ("note: starting 3 processes, not 5 (nosuchhost.invalid: its name does not resolve): the global "
            "batch stays 60, and so does the learning rate; each process now takes 20 images of it instead "
            "of 12") in result.stdout
    (line,) = restart_lines(result.stderr)
    assert line.startswith("restart 1 of 1: rank 2 (pid ") and "epoch 2, step 2" in line, line
    assert_same_weights(weights(out), weights(one_process))
    assert read_checkpoint(out)[1]["config"]["processes"] == 3
    assert not (out / ".ranks").exists()  # the ranks' reports went there, and are cleared at the end


@needs_mpi
def test_the_resume_command_of_a_failed_job_keeps_its_hosts(tmp_path):
    out = tmp_path / "run"
    result = faulty("--out", out, "--hosts", "localhost:2", fault="rank=1,step=7,kind=raise")
    assert result.returncode == 2
    (line,) = error_lines(result.stderr)
    assert line.endswith(f"the checkpoint at epoch 2, step 2 ({out}) is kept: numcnn train --resume {out} "
                         f"--processes 2 --hosts localhost:2"), line


@needs_mpi
def test_too_few_reachable_slots_is_one_error_before_any_work(tmp_path):
    result = numcnn("train", *ELASTIC, "--out", tmp_path / "run", "--hosts", "localhost:2,nosuchhost.invalid:2",
                    "--min-processes", 3)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [result.stderr.strip()]
    assert "only 2 ranks can start" in result.stderr and "nosuchhost.invalid: its name does not resolve" in result.stderr
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


@needs_mpi
def test_a_rank_that_fails_every_time_stops_after_k_restarts_with_one_error_line(tmp_path):
    out = tmp_path / "run"
    result = faulty("--out", out, "--processes", 2, "--max-restarts", 2, fault="rank=1,step=2,kind=raise,attempts=all")
    assert result.returncode == 2
    assert [line.split(":")[0] for line in restart_lines(result.stderr)] == ["restart 1 of 2", "restart 2 of 2"]
    assert all("the start (nothing was saved yet)" in line for line in restart_lines(result.stderr))
    (line,) = error_lines(result.stderr)
    assert line == ("error: rank 1 of 2: RuntimeError: a fault on purpose at step 2 (NUMCNN_FAULT); "
                    "stopped after 2 restarts"), result.stderr


@needs_mpi
def test_a_mistake_in_the_settings_is_not_restarted(tmp_path):
    # The last batch holds 1 sample for 2 ranks: every start would meet the same error.
    result = numcnn("train", *ELASTIC, "--limit", 241, "--out", tmp_path / "run", "--processes", 2,
                    "--max-restarts", 3)
    assert result.returncode == 2
    assert not restart_lines(result.stderr)
    (line,) = error_lines(result.stderr)
    assert "the last batch of each epoch holds 1" in line and line.endswith("not restarted: a restart would meet it again")


@needs_mpi
def test_a_hanging_rank_is_found_by_the_deadline_and_restarted(one_process, tmp_path):
    out = tmp_path / "run"
    result = faulty("--out", out, "--processes", 2, "--max-restarts", 1, fault="rank=1,step=7,kind=hang",
                    NUMCNN_COLLECTIVE_TIMEOUT="5")
    assert result.returncode == 0, result.stderr
    (line,) = restart_lines(result.stderr)
    assert line.startswith("restart 1 of 1: rank 1 stopped answering (rank 0 of 2: gradient all-reduce did "
                           "not complete within 5 s"), line
    assert "epoch 2, step 2" in line
    assert_same_weights(weights(out), weights(one_process))
