"""numcnn's own threads: the work is cut the same way whatever the thread count, so results are
bit-identical with 1 thread or many; the BLAS runs single-threaded inside them; bad counts are
clear errors."""

import builtins
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import numcnn as nc
from numcnn import functional as F
from numcnn import threads
from numcnn.functional import conv
from numcnn.errors import ConfigError


@pytest.fixture
def restore_threads():
    yield
    threads.set_num_threads(1)


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
    # Over threads.SMALL elements, and 4 times threads.MIN_PIECE: batch norm's sums come in pieces.
    big = rng.standard_normal((64, 16, 32, 32), dtype=np.float32)
    for forward, backward, args in ((F.max_pool2d_forward, F.max_pool2d_backward, (3, 2, 1)),
                                    (F.avg_pool2d_forward, F.avg_pool2d_backward, (3, 2, 1))):
        out, cache = forward(big, *args)
        results += [out, backward(np.ones_like(out), cache)]
    results += [F.relu(big), F.relu_backward(big, big)]
    ones, zeros = np.ones(16, np.float32), np.zeros(16, np.float32)
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


def test_the_blas_runs_single_threaded_once_numcnn_sets_the_count(restore_threads):
    threads.set_num_threads(2)
    blas = [entry for entry in threadpool_info() if entry["user_api"] == "blas"]
    assert blas and all(entry["num_threads"] == 1 for entry in blas)


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
    assert threads.pieces(128, 2 * threads.MIN_PIECE - 1) == [slice(0, 128)]
    assert threads.pieces(128, 3 * threads.MIN_PIECE) == threads.split(128, 3)
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


def test_without_threadpoolctl_a_count_is_refused_and_the_default_stays_serial(monkeypatch):
    real_import = builtins.__import__

    def no_threadpoolctl(name, *args, **kwargs):
        if name == "threadpoolctl":
            raise ImportError("No module named 'threadpoolctl'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_threadpoolctl)
    monkeypatch.setattr(threads, "_controller", None)
    monkeypatch.setattr(threads, "_threads", 1)
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match="threadpoolctl"):
        threads.set_num_threads(2)
    assert threads.configure_from_env(default=4) == 1
    monkeypatch.setenv(threads.ENV_VAR, "2")
    with pytest.raises(ConfigError, match="threadpoolctl"):
        threads.configure_from_env(default=4)


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
