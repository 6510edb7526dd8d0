"""numcnn.runtime: the thread count the library resolves by itself (environment, cores, cgroup
quota); the work cut the same way whatever the count, so results are bit-identical with 1 thread
or many; the BLAS held to one thread inside numcnn's kernels and given back after; scratch
buffers; the malloc setting; bad counts as clear errors.

conftest.py restores the runtime, the BLAS and the working folder after every test; a check
of a process-wide setting that cannot be undone (malloc) runs in an interpreter of its own."""

import builtins
import os
import platform
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import numcnn as nc
from numcnn import functional as F
from numcnn import runtime as threads
from numcnn import runtime
from numcnn.functional import conv
from numcnn.errors import ConfigError


@pytest.fixture
def restore_threads():
    yield  # conftest's autouse fixture puts every setting back; this name says the test changes them


def every_threaded_kernel(seed=0):
    rng = np.random.default_rng(seed)
    # Columns of 22 MB at stride 1 and 5 MB at stride 2: the batch is cut into chunks either way.
    x = rng.standard_normal((64, 16, 24, 24), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    results = []
    for stride, col_bytes in ((1, 16 * 9 * 24 * 25 * 4), (2, 16 * 9 * 12 * 12 * 4)):
        assert len(conv._chunks(len(x), col_bytes)) > 1
        out, cache = F.conv2d_forward(x, w, None, stride, 1)
        results += [out, *F.conv2d_backward(np.ones_like(out), cache)[:2]]
    a = rng.standard_normal((300, 500), dtype=np.float32)
    wl = rng.standard_normal((64, 500), dtype=np.float32)
    out, cache = F.linear_forward(a, wl)
    results += [out, *F.linear_backward(np.ones_like(out), cache)[:2]]
    # threads.SMALL elements, 8 times threads.MIN_PIECE: element-wise passes are shared out,
    # and batch norm's sums come in pieces.
    big = rng.standard_normal((64, 32, 32, 32), dtype=np.float32)
    assert big.size >= threads.SMALL and len(threads.pieces(len(big), big.size)) > 1
    for forward, backward, args in ((F.max_pool2d_forward, F.max_pool2d_backward, (3, 2, 1)),
                                    (F.avg_pool2d_forward, F.avg_pool2d_backward, (3, 2, 1))):
        out, cache = forward(big, *args)
        results += [out, backward(np.ones_like(out), cache)]
    results += [F.relu(big), F.relu_backward(big, big)]
    ones, zeros = np.ones(32, np.float32), np.zeros(32, np.float32)
    out, cache, running = F.batch_norm_forward(big, ones, zeros, zeros, ones, True)
    results += [out, *F.batch_norm_backward(big, cache), *running]
    return results


@pytest.mark.parametrize("count", [2, 3, 5])
def test_results_are_bit_identical_with_any_thread_count(restore_threads, count):
    threads.set_num_threads(1)
    serial = every_threaded_kernel()
    threads.set_num_threads(count)
    assert threads.get_num_threads() == count
    for ours, theirs in zip(every_threaded_kernel(), serial):
        assert np.array_equal(ours, theirs)


def test_a_training_run_gives_the_same_weights_with_one_thread_or_three(restore_threads):
    (x, y), _ = nc.data.load("sample")
    weights = []
    for count in (1, 3):
        threads.set_num_threads(count)
        run = nc.recipe.build({"dataset": "sample", "model": "simple-convnet", "limit": 200, "epochs": 1,
                               "batch_size": 50, "test_limit": 20})
        run.fit(run.trainer())
        weights.append(run.model.state_dict())
    for key in weights[0]:
        assert np.array_equal(weights[0][key], weights[1][key]), key


def blas_counts():
    return [entry["num_threads"] for entry in threadpool_info() if entry["user_api"] == "blas"]


@pytest.mark.parametrize("count", [1, 2])
def test_the_blas_runs_on_one_thread_inside_a_kernel_and_gets_its_own_count_back(count):
    threads.set_num_threads(count)
    seen = []
    real = F.conv.run_chunks

    def spying(fn, items):  # what the BLAS is set to while the kernel's pieces run
        seen.append(blas_counts())
        return real(fn, items)

    x = np.random.default_rng(0).standard_normal((64, 8, 16, 16), dtype=np.float32)
    w = np.ones((8, 8, 3, 3), np.float32)
    with threadpool_limits(limits=2, user_api="blas"):  # the user's own setting
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(F.conv, "run_chunks", spying)
            F.conv2d_forward(x, w, None, 1, 1)
        assert seen and all(counts == [1] * len(counts) for counts in seen)
        assert blas_counts() == [2] * len(blas_counts())  # given back: other NumPy code keeps its threads


def test_numpy_outside_numcnn_keeps_the_blas_threads_after_configure():
    with threadpool_limits(limits=2, user_api="blas"):
        threads.configure(threads=2)
        F.linear_forward(np.ones((300, 500), np.float32), np.ones((64, 500), np.float32))
        assert blas_counts() == [2] * len(blas_counts())


def test_run_chunks_keeps_order_and_the_callers_errstate(restore_threads):
    threads.set_num_threads(3)
    assert threads.run_chunks(lambda i: i * i, range(10)) == [i * i for i in range(10)]
    big = np.full(4, 1e30, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning from any thread would fail the test
        with np.errstate(over="ignore"):
            products = threads.run_chunks(lambda v: v * v, [big, big, big])
    assert all(np.isinf(p).all() for p in products)


def test_run_chunks_raises_an_items_error_only_once_every_started_item_is_done(restore_threads):
    threads.set_num_threads(3)
    lock, running, finished, other_started = threading.Lock(), [0], [], threading.Event()

    def item(i):
        with lock:
            running[0] += 1
        try:
            if i == 0:  # most likely the calling thread's: it starts before the helpers wake
                other_started.wait(1)
                raise ValueError("item 0")
            other_started.set()
            time.sleep(0.05)
            finished.append(i)
        finally:
            with lock:
                running[0] -= 1

    with pytest.raises(ValueError, match="item 0"):
        threads.run_chunks(item, range(12))
    assert running[0] == 0
    assert len(finished) < 11  # the others stopped taking items


def test_run_chunks_nested_in_an_item_runs_serially_and_the_pool_is_used_again_after(restore_threads):
    threads.set_num_threads(2)

    def outer(i):
        inner = threads.run_chunks(lambda j: threading.current_thread().name, range(4))
        assert len(set(inner)) == 1  # serial, on this item's own thread
        time.sleep(0.02)
        return threading.current_thread().name

    names = set(threads.run_chunks(outer, range(6)))
    assert any(name.startswith("numcnn") for name in names)  # a pool thread took some items
    again = set(threads.run_chunks(lambda i: (time.sleep(0.02), threading.current_thread().name)[1], range(6)))
    assert len(again) == 2  # the calling thread's flag was restored: both threads work again


def test_split_cuts_evenly_and_never_empty():
    assert threads.split(10, 4) == [slice(0, 2), slice(2, 5), slice(5, 7), slice(7, 10)]
    assert threads.split(3, 8) == [slice(0, 1), slice(1, 2), slice(2, 3)]


@pytest.mark.parametrize("count", [1, 3])
def test_summed_work_is_cut_by_its_size_alone_into_pieces_of_at_least_min_piece(restore_threads, count):
    threads.set_num_threads(count)
    assert threads.pieces(128, threads.SMALL - 1) == [slice(0, 128)]  # small work stays whole
    assert threads.SMALL < 5 * threads.MIN_PIECE < threads.PIECES * threads.MIN_PIECE
    assert threads.pieces(128, 5 * threads.MIN_PIECE) == threads.split(128, 5)
    assert threads.pieces(128, 100 * threads.MIN_PIECE) == threads.split(128, threads.PIECES)
    assert threads.pieces(3, 100 * threads.MIN_PIECE) == threads.split(3, 3)  # never an empty piece
    assert threads.pieces(128) == threads.split(128, threads.PIECES)  # size unknown
    assert threads.pieces(128, 100 * threads.MIN_PIECE, host=False) == [slice(0, 128)]  # a GPU: one launch


@pytest.mark.parametrize("count", [1, 3])
def test_each_share_gives_every_thread_one_piece_and_small_work_one_call(restore_threads, count):
    threads.set_num_threads(count)
    seen = []
    threads.each_share(seen.append, 10, threads.SMALL)
    assert sorted(seen, key=lambda part: part.start) == threads.split(10, count)
    seen.clear()
    threads.each_share(seen.append, 10, threads.SMALL - 1)  # below SMALL: the calling thread, once
    assert seen == [slice(0, 10)]
    seen.clear()
    threads.each_share(seen.append, 10, threads.SMALL, host=False)  # a GPU's work: one launch
    assert seen == [slice(0, 10)]


@pytest.mark.parametrize("value", [0, -1, "two", 1.5, True, None])
def test_bad_thread_counts_are_config_errors(value):
    with pytest.raises(ConfigError, match="threads must be an int >= 1"):
        threads.set_num_threads(value)


def test_without_threadpoolctl_a_count_is_refused_and_auto_stays_serial(monkeypatch):
    real_import = builtins.__import__

    def no_threadpoolctl(name, *args, **kwargs):
        if name == "threadpoolctl":
            raise ImportError("No module named 'threadpoolctl'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_threadpoolctl)
    monkeypatch.setattr(runtime, "_blas", None)
    monkeypatch.setenv(runtime.ENV_VAR, "2")
    with pytest.raises(ConfigError, match="threadpoolctl"):
        runtime.configure(threads=2)
    runtime.configure(threads="auto")
    assert runtime.get_num_threads() == 1
    assert "threadpoolctl is not installed" in runtime.describe()["source"]
    out, _ = F.conv2d_forward(np.ones((2, 1, 5, 5), np.float32), np.ones((1, 1, 3, 3), np.float32))
    assert (out == 9).all()  # kernels still run, serially


@pytest.mark.parametrize("argv, env, message", [
    (["--threads", "0"], {}, "--threads: expected an integer >= 1, got '0'"),
    ([], {"NUMCNN_NUM_THREADS": "many"}, "$NUMCNN_NUM_THREADS must be an int >= 1, got 'many'"),
])
def test_the_command_line_refuses_bad_counts_in_one_line(tmp_path, argv, env, message):
    result = subprocess.run([sys.executable, "-m", "numcnn", "train", "--dataset", "sample", "--limit", "10",
                             "--out", str(tmp_path / "run"), *argv], capture_output=True, text=True,
                            env={**__import__("os").environ, **env}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()


# -- the default: "auto", resolved by the library itself -----------------------------------------
RESOLVED = "import numcnn; print(numcnn.runtime.get_num_threads(), numcnn.runtime.describe()['source'])"


def resolved_in_a_fresh_process(**env):
    clean = {k: v for k, v in os.environ.items() if k not in (runtime.ENV_VAR, runtime.OMP_VAR)}
    out = subprocess.run([sys.executable, "-c", RESOLVED], capture_output=True, text=True, check=True,
                         env={**clean, **env}, timeout=60).stdout.split(maxsplit=1)
    return int(out[0]), out[1].strip()


def test_a_plain_import_uses_every_core_this_process_may_use():
    assert resolved_in_a_fresh_process() == (runtime.available_cores(), "the cores this process may use")


def test_numcnn_num_threads_works_in_the_library_and_wins_over_omp():
    assert resolved_in_a_fresh_process(NUMCNN_NUM_THREADS="3") == (3, "$NUMCNN_NUM_THREADS")
    assert resolved_in_a_fresh_process(OMP_NUM_THREADS="5") == (5, "$OMP_NUM_THREADS")
    assert resolved_in_a_fresh_process(NUMCNN_NUM_THREADS="3", OMP_NUM_THREADS="5")[0] == 3
    assert resolved_in_a_fresh_process(OMP_NUM_THREADS="4,2")[0] == 4  # OpenMP's nested form


def test_auto_is_resolved_at_first_use_and_again_after_configure(monkeypatch):
    monkeypatch.setenv(runtime.ENV_VAR, "3")
    runtime.configure(threads="auto")
    assert runtime.get_num_threads() == 3
    monkeypatch.setenv(runtime.ENV_VAR, "4")
    assert runtime.get_num_threads() == 3  # resolved once, not at every kernel
    runtime.configure(threads="auto")
    assert runtime.get_num_threads() == 4


def test_using_sets_the_count_for_a_block_then_puts_the_previous_back():
    runtime.configure(threads=3)
    with runtime.using(threads=1):
        assert runtime.get_num_threads() == 1
    assert runtime.get_num_threads() == 3
    with pytest.raises(RuntimeError):
        with runtime.using(threads=2):
            raise RuntimeError
    assert runtime.get_num_threads() == 3


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "150000 100000\n"}, 2),          # cgroup v2: 1.5 CPUs round up
    ({"cpu.max": "max 100000\n"}, None),          # no quota
    ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
    ({}, None),
])
def test_the_cgroup_cpu_quota_is_read_in_either_version(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert runtime._cgroup_cpus(tmp_path) == expected


def test_the_library_default_gives_the_command_lines_weights(tmp_path):
    """The same seed and settings through the API, with nothing configured, and through
    `numcnn train` (its own process, its own default) give equal weights."""
    settings = {"dataset": "sample", "model": "simple-convnet", "limit": 300, "epochs": 1,
                "batch_size": 50, "test_limit": 20, "seed": 3}
    run = nc.recipe.build(settings)
    run.fit(run.trainer())
    done = subprocess.run([sys.executable, "-m", "numcnn", "train", "--dataset", "sample", "--model",
                           "simple-convnet", "--limit", "300", "--epochs", "1", "--batch-size", "50",
                           "--test-limit", "20", "--seed", "3", "--out", str(tmp_path / "run"), "--no-plots",
                           "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    saved = nc.load(tmp_path / "run" / "model.npz").state_dict()
    ours = run.model.state_dict()
    assert saved.keys() == ours.keys()
    for key in ours:
        assert np.array_equal(saved[key], ours[key]), key


def test_the_old_module_names_reach_the_runtime():
    assert nc.threads is nc.runtime and nc.allocator is nc.runtime
    assert callable(nc.allocator.keep_freed_memory)


# -- scratch buffers -----------------------------------------------------------------------------
def test_scratch_hands_back_the_same_memory_for_the_same_request_on_a_thread():
    runtime.clear_scratch()
    a = runtime.scratch("t.a", (4, 5), np.float32)
    assert runtime.scratch("t.a", (4, 5), np.float32) is a
    assert runtime.scratch("t.a", (4, 5), np.float64) is not a      # another dtype
    assert runtime.scratch("t.a", (5, 4), np.float32) is not a      # another shape
    assert runtime.scratch("t.b", (4, 5), np.float32) is not a      # another name
    other = []
    worker = threading.Thread(target=lambda: other.append(runtime.scratch("t.a", (4, 5), np.float32)))
    worker.start(), worker.join()
    assert other[0] is not a  # each thread has its own
    runtime.clear_scratch()


def test_scratch_keeps_at_most_its_budget(monkeypatch):
    runtime.clear_scratch()
    monkeypatch.setattr(runtime, "SCRATCH_BYTES", 1000)
    first = runtime.scratch("t.first", (100,), np.float32)  # 400 bytes
    runtime.scratch("t.second", (100,), np.float32)
    runtime.scratch("t.third", (100,), np.float32)  # 1200 > 1000: the longest unused goes
    assert runtime.scratch("t.first", (100,), np.float32) is not first
    assert runtime.scratch("t.huge", (1000,), np.float32) is not runtime.scratch("t.huge", (1000,), np.float32)
    runtime.clear_scratch()


def test_a_kernels_outputs_never_share_its_scratch():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 3, 8, 8), dtype=np.float32), rng.standard_normal((5, 3, 3, 3), dtype=np.float32)
    first, cache = F.conv2d_forward(x, w, None, 1, 1)
    kept = first.copy()
    dx, dw, _ = F.conv2d_backward(np.ones_like(first), cache)
    kept_dx, kept_dw = dx.copy(), dw.copy()
    F.conv2d_forward(x * 2, w, None, 1, 1)  # the same shapes again: the same scratch
    F.conv2d_backward(np.full_like(first, 3), cache)
    assert np.array_equal(first, kept) and np.array_equal(dx, kept_dx) and np.array_equal(dw, kept_dw)


# -- freed memory (process-wide, so each check runs in an interpreter of its own) -----------------
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Page faults of the second of two 3 MiB arrays allocated, written and freed in turn (below
# NumPy's 4 MiB huge-page threshold, so pages are 4 KiB: 768 of them).
PROBE = """
import resource, sys
import numpy as np
import numcnn
applied = numcnn.runtime.keep_freed_memory() if sys.argv[1] == "keep" else None
def faults_of_one_array():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.empty(3 << 18, np.float32)
    a.fill(1.0)
    del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_one_array()
print(applied, faults_of_one_array(), faults_of_one_array(), numcnn.runtime.describe()["keep_freed_memory"])
"""


def probe(mode: str, env=None):
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    return out[0], int(out[1]), int(out[2]), out[3]


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's; elsewhere keep_freed_memory does nothing")
def test_kept_memory_is_reused_without_page_faults():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    applied, second, third, described = probe("keep", env)
    assert applied == "True" and described == "True"
    assert second < 100 and third < 100  # of 768 pages
    # The control: glibc's defaults hand the memory back, and the next array faults again.
    _, second, _, described = probe("default", env)
    assert second > 500 and described == "False"  # and nothing sets it on import


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's; elsewhere keep_freed_memory does nothing")
def test_malloc_settings_in_the_environment_are_left_to_rule():
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="131072")
    assert probe("keep", env)[0] == "False"


def test_elsewhere_it_does_nothing(monkeypatch):
    monkeypatch.setattr(runtime.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert runtime.keep_freed_memory() is False
