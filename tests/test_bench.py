"""Smoke tests of the benchmark harness: it runs each implementation in worker processes,
prints its table, records the machine and the spread, and flags a wrong kernel or a failing
worker. Timings are never asserted on."""

import json
import platform
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from numcnn import Sequential, bench, cli, runtime, zoo
from numcnn.errors import ConfigError
from numcnn.layers import Dropout, Layer
from numcnn.bench import check, measure, runners, translate, worker, workloads
from parity import CUDA_MISSING


def rows_of(printed):
    return {line.split()[0]: line for line in printed.splitlines()
            if line.split() and line.split()[0] in {c.name for c in workloads.CASES.values()}}


def broken_worker(tmp_path, monkeypatch, body):
    """Make every worker process run `body` first (a script around the real worker)."""
    script = tmp_path / "broken_worker.py"
    script.write_text("import sys\nimport numpy as np\nfrom numcnn.bench import runners, worker\n"
                      + textwrap.dedent(body) + "\nsys.exit(worker.main())\n")
    monkeypatch.setattr(measure, "WORKER", [sys.executable, str(script)])


def test_quick_table_with_torch_and_textbook(capsys, tmp_path):
    pytest.importorskip("torch")
    out_json = tmp_path / "bench.json"
    code = bench.main(["--quick", "--only", "L1,SimpleConvNet", "--dtype", "float32", "--mode", "fwdbwd",
                       "--json", str(out_json)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "numcnn ms" in printed and "nc/torch" in printed and "geomean" in printed
    rows = rows_of(printed)
    assert set(rows) == {"L1", "SimpleConvNet"}
    assert all(line.split()[-1] == "ok" for line in rows.values())
    report = json.loads(out_json.read_text())
    meta = report["meta"]
    for key in ("cpu", "numpy", "blas", "threads", "torch", "rounds", "gemm_peak_gflops"):
        assert key in meta
    # Each library as its users run it: numcnn's runtime default, torch's own thread count.
    assert meta["threads"] is None and meta["numcnn_threads"] == runtime.get_num_threads()
    assert meta["torch_reported"]["torch_threads"] >= 1 and meta["torch_reported"]["torch_cpu_capability"]
    assert meta["isa"] and "threads" in printed and "CPU kernels for" in printed
    for row in report["rows"]:
        assert set(row["seconds"]) == {"numcnn", "torch", "textbook"}
        for key in ("value", "min", "max", "rounds"):
            assert key in row["numcnn_over_torch"] and key in row["textbook_over_numcnn"]


def test_rounds_take_turns_without_torch(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    out_json.write_text("an older record")  # replaced, as asked
    code = bench.main(["--quick", "--only", "DW,ResBlock", "--no-torch", "--mode", "fwdbwd",
                       "--dtype", "float32", "--rounds", "2", "--json", str(out_json), "--overwrite"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = rows_of(printed)
    assert rows["DW"].split()[-1] == "ok"
    assert rows["ResBlock"].split()[-1] == "-"  # the book has no batch norm: nothing to compare
    dw, block = json.loads(out_json.read_text())["rows"]
    assert [list(workers) for workers in dw["workers"]] == [["numcnn", "textbook"], ["textbook", "numcnn"]]
    assert len(dw["textbook_over_numcnn"]["rounds"]) == 2
    assert [list(workers) for workers in block["workers"]] == [["numcnn"], ["numcnn"]]


def test_residual_block_matches_torch():
    """The ResBlock row's check, in-process: numcnn and its torch translation agree."""
    torch = pytest.importorskip("torch")
    case = workloads.quick(workloads.CASES["resblock"])
    x, y = workloads.net_inputs(case, np.float64)
    outputs = {impl: [np.asarray(a) for a in runners.TRAINERS[impl](workloads.build_net(case, np.float64), lib)
                      .gradients(x, y)] for impl, lib in (("numcnn", None), ("torch", torch))}
    assert len(outputs["numcnn"]) == 1 + 2 + 2 * 2 + 2  # logits; two conv weights, two BN pairs, Linear pair
    assert check.compare(outputs, check.TOL_NET["float64"]) == {}


def test_the_profiled_cifar_resnet_step_matches_torch():
    """benchmarks/profile_step.py CifarResNet times the zoo's cifar-resnet against its torch
    translation: the two compute the same gradients (every conv, BN and the Linear)."""
    torch = pytest.importorskip("torch")
    case = workloads.quick(workloads.PROFILE_CASES["cifarresnet"])
    x, y = workloads.net_inputs(case, np.float64)
    outputs = {impl: [np.asarray(a) for a in runners.TRAINERS[impl](workloads.build_net(case, np.float64), lib)
                      .gradients(x, y)] for impl, lib in (("numcnn", None), ("torch", torch))}
    assert len(outputs["numcnn"]) == 1 + 21 + 2 * 21 + 2  # logits; 21 convs, 21 BN pairs, Linear pair
    assert check.compare(outputs, check.TOL_NET["float64"]) == {}


def test_wrong_kernel_is_flagged(capsys, tmp_path, monkeypatch):
    broken_worker(tmp_path, monkeypatch, """
        from numcnn.layers import conv as conv_layer  # the kernel the timed Conv2d calls
        real = conv_layer.conv2d_forward

        def off_by_one(*args, **kwargs):
            out, cache = real(*args, **kwargs)
            return out + out.dtype.type(1), cache
        conv_layer.conv2d_forward = off_by_one
    """)
    code = bench.main(["--quick", "--only", "L3", "--dtype", "float32", "--mode", "fwd", "--no-torch"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "MISMATCH textbook" in rows_of(printed)["L3"]


def test_failing_worker_is_flagged(capsys, tmp_path, monkeypatch):
    broken_worker(tmp_path, monkeypatch, """
        if "textbook" in sys.argv:
            raise RuntimeError("textbook worker broke")
    """)
    code = bench.main(["--quick", "--only", "P1", "--dtype", "float32", "--mode", "fwd", "--no-torch"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "FAILED textbook: RuntimeError: textbook worker broke" in rows_of(printed)["P1"]


def test_textbook_not_found_is_left_out_with_a_note(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("NUMCNN_TEXTBOOK", raising=False)
    monkeypatch.setattr(bench, "DEFAULT_TEXTBOOK", tmp_path / "missing.py")
    code = bench.main(["--quick", "--only", "P1", "--no-torch", "--mode", "fwd", "--dtype", "float32"])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.count("textbook code") == 1 and "left out" in printed
    assert rows_of(printed)["P1"].split()[-1] == "-"  # nothing to compare against
    # An explicit path that does not exist is a usage error, not a silent omission.
    with pytest.raises(ConfigError, match="no textbook code"):
        bench.main(["--textbook", str(tmp_path / "missing.py")])


def test_unknown_workload_is_a_usage_error():
    with pytest.raises(ConfigError, match=r"unknown workload\(s\) \['l9'\]"):
        bench.main(["--only", "L9"])


@pytest.fixture
def no_benchmark(monkeypatch):
    """Any start of the measurements fails the test: a bad command line must stop before."""
    def started(*args, **kwargs):
        raise AssertionError("the benchmark started")
    monkeypatch.setattr(bench.machine, "describe", started)


def one_error_line(capsys, *argv):
    """The single ``error:`` line that ``numcnn bench ARGV`` prints, after checking its exit status 2."""
    status = cli.main(["bench", *argv])
    out, err = capsys.readouterr()
    assert status == 2 and out == "", (status, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("argv, expected", [
    (["--frob"], "numcnn bench: unrecognized arguments: --frob (see numcnn bench --help)"),
    (["--qu", "--only", "NOPE"], "unrecognized arguments: --qu"),  # no abbreviations: not --quick
    (["--dt", "float32"], "unrecognized arguments: --dt float32"),
    (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["--repeat", "x"], "argument --repeat: invalid int value: 'x'"),
    (["--only", "NOPE"], "unknown workload(s) ['nope']; known: L1,"),
    (["--threads", "0"], "--threads must be an int >= 1, got 0"),
    (["--repeat", "0"], "--repeat must be an int >= 1, got 0"),
    (["--rounds", "-1"], "--rounds must be an int >= 1, got -1"),
    (["--warmup", "-1"], "--warmup must be an int >= 0, got -1"),
    (["--epoch-steps", "0"], "--epoch-steps must be an int >= 1, got 0"),
    (["--batch", "0"], "--batch must be an int >= 1, got 0"),
])
def test_a_bad_command_line_is_one_error_line_before_any_work(argv, expected, capsys, no_benchmark):
    assert expected in one_error_line(capsys, *argv)


def test_an_existing_json_file_is_kept_unless_overwrite(capsys, tmp_path, no_benchmark):
    mine = tmp_path / "mine.json"
    mine.write_text('{"mine": 1}')
    assert "pass --overwrite" in one_error_line(capsys, "--quick", "--json", str(mine))
    assert mine.read_text() == '{"mine": 1}'
    assert "is a folder" in one_error_line(capsys, "--quick", "--json", str(tmp_path))


def test_help_lists_overwrite_and_exits_0(capsys):
    assert cli.main(["bench", "--help"]) == 0
    assert "--overwrite" in capsys.readouterr().out


def test_epoch_and_memory_modes(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    assert bench.main(["--epoch", "--quick", "--no-torch", "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "s/epoch" in printed and "textbook/numcnn" in printed
    assert set(json.loads(out_json.read_text())["epoch"]["seconds_per_epoch"]) == {"numcnn", "textbook"}
    assert bench.main(["--memory", "--quick", "--no-torch", "--no-textbook"]) == 0
    assert "MiB" in capsys.readouterr().out


def test_a_broken_zoo_fails_loudly(monkeypatch, capsys):
    def broken(**kwargs):
        raise RuntimeError("zoo is broken")
    monkeypatch.setattr(zoo, "simple_convnet", broken)
    with pytest.raises(RuntimeError, match="zoo is broken"):
        worker.main(["--impl", "numcnn", "--case", "SimpleConvNet", "--mode", "step", "--quick"])


def test_translations_refuse_what_they_cannot_mirror():
    model = workloads.build_net(workloads.quick(workloads.CASES["resblock"]), np.float32)
    with pytest.raises(TypeError, match="textbook"):
        translate.to_textbook(runners.load_textbook(str(bench.DEFAULT_TEXTBOOK)), model)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="PyTorch"):
        translate.to_torch(torch, Sequential(Dropout(0.5), _Unknown()))


class _Unknown(Layer):
    """A layer the translations have never heard of."""

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


@pytest.mark.skipif(CUDA_MISSING is None, reason="this machine has a usable GPU; the error needs one without")
def test_device_cuda_without_a_gpu_is_a_usage_error_before_any_worker(capsys, no_benchmark):
    assert one_error_line(capsys, "--quick", "--only", "L1", "--device", "cuda").startswith(
        "error: device 'cuda' needs CuPy")


def test_gpu_timing_waits_for_the_queue_inside_each_timed_call():
    """A GPU call only queues its kernels; the clock must stop after the sync, not before."""
    import time

    from numcnn.bench.clock import time_calls

    queued = []
    seconds = time_calls(lambda: queued.append(1), 0, 3, sync=lambda: time.sleep(0.02))
    assert len(queued) == 3 and min(seconds) >= 0.02


@pytest.mark.parametrize("same_malloc", [False, True])
def test_every_worker_keeps_freed_memory_only_with_same_malloc(same_malloc, monkeypatch):
    """Every worker runs with its library's own malloc behaviour (numcnn's sets none), unless
    --same-malloc asks every one to keep memory; no thread count is passed unless asked."""
    commands = []

    def fake_run(command, **kwargs):
        commands.append(command)
        return types.SimpleNamespace(returncode=0, stdout='{"versions": {}}', stderr="")

    monkeypatch.setattr(measure.subprocess, "run", fake_run)
    settings = measure.Settings(impls=list(runners.IMPLS), rounds=1, warmup=0, repeat=1, threads=1,
                                stat=min, same_malloc=same_malloc)
    for impl in runners.IMPLS:
        measure.spawn(impl, [], settings)
    kept = {impl: "--keep-memory" in command for impl, command in zip(runners.IMPLS, commands)}
    assert kept == {"numcnn": same_malloc, "torch": same_malloc, "textbook": same_malloc}
    assert all("--threads" in command for command in commands)  # threads=1 was asked for
    settings.threads = None
    commands.clear()
    measure.spawn("numcnn", [], settings)
    assert "--threads" not in commands[0]  # each library's own default


def test_the_worker_keeps_freed_memory_only_when_asked():
    """In a worker process of its own: the setting is process-wide."""
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    for flags, expected in (([], False), (["--keep-memory"], glibc)):
        done = subprocess.run([*measure.WORKER, "--impl", "numcnn", "--case", "gemm", "--size", "32",
                               "--repeat", "1", "--warmup", "0", *flags], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1])["versions"]["malloc_keeps_freed"] is expected


def test_a_step_counts_the_flops_of_every_conv_and_linear_however_it_runs():
    """SimpleConvNet's conv runs with its ReLU fused in: its multiply-adds count all the same."""
    per_sample = 30 * 24 * 24 * (1 * 5 * 5) + 100 * 4320 + 10 * 100  # conv, Linear, Linear
    assert workloads.net_flops(workloads.CASES["simpleconvnet"]) == 3 * 2 * per_sample * 100


def test_the_fused_relu_benchmark_runs_and_reports_both_ways():
    """benchmarks/fused_relu.py, in a process of its own as it is run (it sets the thread
    count); not a test of speed: tiny sizes, one round."""
    from pathlib import Path
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "fused_relu.py"
    done = subprocess.run([sys.executable, str(script), "--rounds", "1", "--scale", "0.02", "--threads", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("apart: median") == done.stdout.count("fused: median") == 3, done.stdout
