"""Smoke tests of the benchmark harness: it runs, prints its table, and flags a wrong kernel.
Timings are never asserted on."""

import json

import numpy as np

from numcnn import bench


def test_quick_table(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    code = bench.main(["--quick", "--only", "L1,P2,DW,SimpleConvNet", "--dtype", "float32",
                       "--json", str(out_json)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "numcnn ms" in printed and "nc/torch" in printed
    for name in ("L1", "P2", "DW", "SimpleConvNet"):
        assert any(line.startswith(name) for line in printed.splitlines())
    assert "MISMATCH" not in printed
    assert "geomean" in printed
    report = json.loads(out_json.read_text())
    assert {row["workload"] for row in report["rows"]} == {"L1", "P2", "DW", "SimpleConvNet"}
    assert all(row["check"] in ("ok", "-") for row in report["rows"])


def test_without_torch_or_textbook(capsys):
    code = bench.main(["--quick", "--only", "L2", "--no-torch", "--no-textbook", "--mode", "fwd", "--stat", "min"])
    printed = capsys.readouterr().out
    assert code == 0
    row = next(line for line in printed.splitlines() if line.startswith("L2"))
    assert row.split()[-1] == "-"  # nothing to compare against


def test_wrong_kernel_is_flagged(capsys, monkeypatch):
    real = bench.conv2d_forward

    def off_by_one(*args):
        out, cache = real(*args)
        return out + np.float32(1), cache
    monkeypatch.setattr(bench, "conv2d_forward", off_by_one)
    code = bench.main(["--quick", "--only", "L3", "--dtype", "float32", "--mode", "fwd", "--no-memory"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "MISMATCH" in printed


def test_unknown_workload_is_a_usage_error(capsys):
    assert bench.main(["--only", "L9"]) == 2
    assert "unknown workload" in capsys.readouterr().err


def test_epoch_and_memory_modes(capsys):
    assert bench.main(["--epoch", "--quick", "--no-textbook"]) == 0
    assert "s/epoch" in capsys.readouterr().out
    assert bench.main(["--memory", "--quick", "--no-torch", "--no-textbook"]) == 0
    assert "MiB" in capsys.readouterr().out
