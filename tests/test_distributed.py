"""Data-parallel training over MPI: N ranks give one process's weights, faults end the job.

The jobs run 2 or 3 ranks on this host (loopback) through MPICH's mpiexec. Without mpi4py or an
mpiexec they are skipped, with the reason; ``make test`` installs both (the [mpi] extra).
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from numcnn import data
from numcnn.distributed import check_shards, shard_bounds
from numcnn.launcher import find_mpiexec
from numcnn.distributed.trainer import ShardedLoader
from numcnn.errors import ConfigError
from numcnn.model import state_dict
from numcnn.train import Trainer

import distributed_worker

try:
    import mpi4py  # noqa: F401
    MPIEXEC = find_mpiexec()
    MISSING = None
except (ImportError, ConfigError) as exc:
    MPIEXEC, MISSING = None, f"MPI is not installed here (pip install 'numcnn[mpi]'): {exc}"
needs_mpi = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

TESTS = Path(__file__).parent
# float64, no batch norm and no dropout: N processes must give one process's weights.
RUN = ["--dataset", "sample", "--model", "simple-convnet", "--limit", "240", "--test-limit", "90",
       "--batch-size", "60", "--dtype", "float64", "--seed", "1", "--no-plots", "--no-progress"]
TOLERANCE = 1e-9


def numcnn(*args, env=None, timeout=60):
    paths = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": paths, **(env or {})}
    return subprocess.run([sys.executable, "-m", "numcnn", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def weights(run_dir) -> dict:
    return dict(np.load(Path(run_dir) / "model.npz"))


def assert_same_weights(got: dict, want: dict, tolerance=TOLERANCE):
    floats = [key for key in want if want[key].dtype.kind == "f" and not key.startswith("__")]
    assert floats and set(floats) <= set(got)
    scale = max(np.abs(want[key]).max() for key in floats)
    worst = max(np.abs(got[key] - want[key]).max() for key in floats)
    assert worst <= tolerance * scale, f"weights differ by {worst:.3g} (scale {scale:.3g})"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: the same run in one process, 2 epochs."""
    out = tmp_path_factory.mktemp("one") / "run"
    result = numcnn("train", *RUN, "--epochs", "2", "--out", out, "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert weights(out)["0.weight"].dtype == np.float64  # --dtype float64
    return out


# -- without MPI: the sharding rules ------------------------------------------------------------
def test_shards_cover_a_batch_once_and_differ_by_at_most_one():
    for n, size in [(12, 3), (13, 3), (5, 5), (7, 2)]:
        bounds = [shard_bounds(n, rank, size) for rank in range(size)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_a_global_batch_that_does_not_divide_or_a_shard_below_one_sample_is_refused():
    check_shards(240, 60, 3)
    check_shards(250, 60, 3)  # last batch of 10: 4, 3, 3 samples
    with pytest.raises(ConfigError, match="does not divide among 7 processes"):
        check_shards(240, 60, 7)
    with pytest.raises(ConfigError, match="last batch"):
        check_shards(241, 60, 2)
    with pytest.raises(ConfigError, match="less than one per process"):
        check_shards(2, 60, 3)


def test_the_shards_of_every_rank_are_one_process_batches_with_the_same_augmentation():
    (x, y), _ = data.load("sample")
    x, y = x[:70], y[:70]
    augment = data.RandomShift(2)
    whole = list(data.DataLoader(x, y, 30, seed=4, augment=augment))
    ranks = [list(ShardedLoader(x, y, 30, rank, 3, seed=4, augment=augment)) for rank in range(3)]
    assert len(whole) == 3 and all(len(r) == 3 for r in ranks)
    for step, (xb, yb) in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([r[step][0] for r in ranks]), xb)
        np.testing.assert_array_equal(np.concatenate([r[step][1] for r in ranks]), yb)


# -- MPI jobs -----------------------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("processes", [2, 3])
def test_processes_give_one_process_weights_and_history(one_process, tmp_path, processes):
    out = tmp_path / "run"
    result = numcnn("train", *RUN, "--epochs", "2", "--out", out, "--processes", processes)
    assert result.returncode == 0, result.stderr
    assert "epoch 2/2" in result.stdout and result.stdout.count("epoch 1/2") == 1  # rank 0 alone speaks
    assert_same_weights(weights(out), weights(one_process))
    want = __import__("json").loads((one_process / "history.json").read_text())
    got = __import__("json").loads((out / "history.json").read_text())
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(got[key], want[key], rtol=TOLERANCE)


@needs_mpi
def test_in_float32_two_processes_give_one_process_weights_to_rounding(tmp_path):
    # Other summation orders change the last bits; Adam carries them on for 8 steps. Measured:
    # 5e-7 relative, a few float32 epsilons (1.2e-7).
    float32 = [arg for arg in RUN if arg not in ("--dtype", "float64")]
    one = numcnn("train", *float32, "--epochs", "2", "--out", tmp_path / "one", "--threads", "1")
    two = numcnn("train", *float32, "--epochs", "2", "--out", tmp_path / "two", "--processes", "2")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert weights(tmp_path / "two")["0.weight"].dtype == np.float32
    assert_same_weights(weights(tmp_path / "two"), weights(tmp_path / "one"), 1e-5)


def _job(tmp_path, processes, mode, **env):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
           "NUMCNN_NUM_THREADS": "1", **env}
    return subprocess.run([MPIEXEC, "-n", str(processes), sys.executable, str(TESTS / "distributed_worker.py"),
                           mode, str(tmp_path / f"{mode}-{processes}.npz")], capture_output=True, text=True,
                          env=env, timeout=60)


def _worker(tmp_path, processes, mode):
    result = _job(tmp_path, processes, mode)
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(np.load(tmp_path / f"{mode}-{processes}.npz"))


@pytest.fixture(scope="module")
def bn_reference():
    return state_dict(distributed_worker.bn_run(Trainer).model)


@needs_mpi
@pytest.mark.parametrize("processes", [2, 3])
def test_sync_bn_gives_one_process_weights_and_per_rank_statistics_do_not(tmp_path, bn_reference, processes):
    assert_same_weights(_worker(tmp_path, processes, "sync-bn"), bn_reference)
    # The case that must differ (as in ChainerMN's tests): each rank normalises with its own shard.
    with pytest.raises(AssertionError, match="weights differ"):
        assert_same_weights(_worker(tmp_path, processes, "per-rank-bn"), bn_reference, 1e-3)


@needs_mpi
def test_the_equivalence_check_fails_without_the_gradient_allreduce(tmp_path, bn_reference):
    with pytest.raises(AssertionError, match="weights differ"):
        assert_same_weights(_worker(tmp_path, 2, "no-allreduce"), bn_reference, 1e-3)


@needs_mpi
def test_a_batch_that_does_not_divide_is_one_error_before_any_work(tmp_path):
    result = numcnn("train", *RUN, "--batch-size", "61", "--out", tmp_path / "run", "--processes", "2")
    assert result.returncode == 2
    assert error_lines(result.stderr) == [result.stderr.strip()]
    assert "does not divide among 2 processes" in result.stderr
    assert not (tmp_path / "run").exists()


@needs_mpi
def test_a_last_batch_below_one_sample_per_rank_ends_every_rank_with_one_error(tmp_path):
    result = numcnn("train", *RUN, "--limit", "241", "--out", tmp_path / "run", "--processes", "2")
    assert result.returncode == 2, result.stderr
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert re.search(r"rank [01] of 2: the last batch of each epoch holds 1", result.stderr)  # the same on both
    assert "--resume" not in result.stderr  # no epoch completed: no checkpoint to point at
    assert "BAD TERMINATION" not in result.stdout + result.stderr
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


@needs_mpi
def test_a_killed_rank_ends_the_job_and_resume_finishes_it(one_process, tmp_path):
    out, report = tmp_path / "run", tmp_path / "report"
    paths = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": paths, "NUMCNN_MPI_REPORT": str(report)}
    # Many epochs, so the job is still training when rank 1 is killed after the first checkpoint.
    job = subprocess.Popen([sys.executable, "-m", "numcnn", "train", *RUN, "--epochs", "200", "--out", str(out),
                            "--processes", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while not (out / "checkpoint.npz").exists() and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.05)
        assert (out / "checkpoint.npz").exists(), job.communicate(timeout=30)
        pids = {rank: int((report / f"rank-{rank}.pid").read_text()) for rank in (0, 1)}
        os.kill(pids[1], signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = job.communicate(timeout=30)
        assert time.monotonic() - killed < 30
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    assert error_lines(stderr) == [stderr.strip()], stderr
    assert f"rank 1 (pid {pids[1]}) was killed by signal 9" in stderr and f"--resume {out}" in stderr
    assert "BAD TERMINATION" not in stdout + stderr
    time.sleep(0.5)
    assert not [pid for pid in pids.values() if _alive(pid)], "a rank was left behind"

    # The last checkpoint resumes, here on 3 processes, and ends where one process ends.
    result = numcnn("train", "--resume", out, "--epochs", "2", "--processes", "3", "--no-plots", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout
    assert_same_weights(weights(out), weights(one_process))


@needs_mpi
def test_rank_and_size_alone_and_under_mpiexec():
    # ranks and a word from rank 0 travel as JSON bytes through gather_json and broadcast_json
    # (only rank 0 prints: mpiexec may interleave two ranks' output within a line)
    script = ("import numcnn as nc; d = nc.distributed; w = d.world(); "
              "ranks = w.gather_json({'rank': d.rank(), 'pad': 'x' * d.rank()}); "
              "word = w.broadcast_json('hello' if d.rank() == 0 else None); "
              "words = w.gather_json(word); "
              "d.rank() == 0 and print(d.size(), *[r['rank'] for r in ranks], *words)")
    alone = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert alone.stdout.split() == ["1", "0", "hello"], alone.stderr
    job = subprocess.run([MPIEXEC, "-n", "3", sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert job.stdout.split() == ["3", "0", "1", "2", "hello", "hello", "hello"], job.stderr


@needs_mpi
def test_a_rank_that_raises_ends_every_rank_with_one_line_naming_it(tmp_path):
    start = time.monotonic()
    result = _job(tmp_path, 3, "raise")
    assert time.monotonic() - start < 30
    assert result.returncode != 0
    assert error_lines(result.stderr) == ["error: rank 1 of 3: RuntimeError: a fault on purpose"], result.stderr
    assert not (tmp_path / "raise-3.npz").exists()


@needs_mpi
def test_a_rank_that_hangs_is_found_by_the_collective_deadline(tmp_path):
    start = time.monotonic()
    result = _job(tmp_path, 2, "hang", NUMCNN_COLLECTIVE_TIMEOUT="3")
    assert time.monotonic() - start < 30
    assert result.returncode != 0
    assert error_lines(result.stderr) == [next(line for line in result.stderr.splitlines()
                                               if line.startswith("error: rank 0 of 2: "))], result.stderr
    assert "did not complete within 3 s on rank 0 of 2" in result.stderr


@needs_mpi
def test_ctrl_c_stops_every_rank_and_keeps_the_checkpoint(tmp_path):
    out, report = tmp_path / "run", tmp_path / "report"
    paths = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": paths, "NUMCNN_MPI_REPORT": str(report)}
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches the launcher, mpiexec
    # and the ranks alike.
    # --max-restarts: Ctrl-C stops the job all the same, and is never restarted.
    job = subprocess.Popen([sys.executable, "-m", "numcnn", "train", *RUN, "--epochs", "200", "--out", str(out),
                            "--processes", "2", "--max-restarts", "3"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (out / "checkpoint.npz").exists() and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.05)
        assert (out / "checkpoint.npz").exists(), job.communicate(timeout=30)
        pids = [int((report / f"rank-{rank}.pid").read_text()) for rank in (0, 1)]
        os.killpg(job.pid, signal.SIGINT)
        stdout, stderr = job.communicate(timeout=30)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 130, stderr
    assert len(error_lines(stderr)) == 1 and "interrupted" in stderr, stderr
    assert "restart" not in stderr, stderr
    time.sleep(0.5)
    assert not [pid for pid in pids if _alive(pid)], "a rank was left behind"
    assert (out / "checkpoint.npz").exists()
