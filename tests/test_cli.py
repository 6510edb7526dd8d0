"""The numcnn command: every command once, and every user mistake as one `error:` line, exit 2."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import numcnn as nc
from numcnn import cli, data
from numcnn.train import Trainer, read_checkpoint

QUICK = ["--dataset", "sample", "--limit", "200", "--test-limit", "100", "--batch-size", "50",
         "--no-progress", "--no-plots"]


def run(capsys, *argv):
    """(exit status, stdout, stderr) of numcnn in this process."""
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(status, err, expected_status=2):
    assert status == expected_status
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One quick trained run shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("run") / "x"
    assert cli.main(["train", *QUICK, "--epochs", "1", "--out", str(out)]) == 0
    return out


def test_train_writes_the_run_and_reports(tmp_path, capsys):
    out = tmp_path / "run"
    status, stdout, err = run(capsys, "train", *QUICK[:-1], "--epochs", "2", "--out", str(out),
                              "--optimizer", "sgd", "--lr", "0.05", "--schedule", "step", "--augment")
    assert status == 0, err
    assert "data: sample from bundled sample" in stdout
    assert "test accuracy: " in stdout and "plots: " in stdout
    assert {"model.npz", "checkpoint.npz", "history.json", "learning_curves.png", "filters.png",
            "feature_maps.png", "confusion.png", "misclassified.png"} <= {p.name for p in out.iterdir()}
    meta = read_checkpoint(out)[1]
    assert meta["epoch"] == 2 and meta["config"]["augment"] is True and meta["optimizer"]["class"] == "SGD"
    assert meta["schedule"]["class"] == "StepLR"


def test_resume_extends_a_finished_run(run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    status, out, err = run(capsys, "train", "--resume", str(copy), "--epochs", "2", "--no-progress", "--no-plots")
    assert status == 0, err
    assert "resuming" in out and "epoch 2/2" in out
    assert read_checkpoint(copy)[1]["epoch"] == 2
    # a third time with no more epochs: nothing to train, still reports
    status, out, err = run(capsys, "train", "--resume", str(copy), "--no-progress", "--no-plots")
    assert status == 0 and "epoch 3" not in out and "test accuracy" in out


def test_evaluate_json(run_dir, capsys):
    status, out, _ = run(capsys, "evaluate", str(run_dir / "model.npz"), "--dataset", "sample", "--json")
    assert status == 0
    result = json.loads(out)
    assert 0 <= result["accuracy"] <= 1 and result["loss"] > 0 and result["samples"] == 1000
    status, out, _ = run(capsys, "evaluate", str(run_dir))  # a run folder; the dataset it recorded
    assert status == 0 and "accuracy" in out


def test_summary_of_a_file_and_of_a_zoo_name(run_dir, capsys):
    status, out, _ = run(capsys, "summary", str(run_dir / "model.npz"))
    assert status == 0 and "total params: 433,890" in out and "(N, 30, 24, 24)" in out
    status, out, _ = run(capsys, "summary", "deep-convnet")
    assert status == 0 and "total params: 123,552" in out


def _write_images(folder, image):
    """The same picture four ways: light-on-dark PNG and JPEG, dark-on-light PNG and JPEG (bigger)."""
    from PIL import Image

    pixels = (image * 255).round().astype(np.uint8)
    paths = {}
    for name, array in (("light", pixels), ("dark", 255 - pixels)):
        for ext in ("png", "jpg"):
            path = folder / f"{name}.{ext}"
            picture = Image.fromarray(array)
            (picture if ext == "png" else picture.resize((56, 56)).convert("RGB")).save(path)
            paths[name, ext] = path
    return paths


def test_predict_reads_png_and_jpeg_either_way_round(run_dir, tmp_path, capsys):
    _, (xt, yt) = data.load("sample")
    paths = _write_images(tmp_path, xt[0, 0])
    status, out, err = run(capsys, "predict", str(run_dir), *map(str, paths.values()), "--top", "3")
    assert status == 0, err
    blocks = out.strip().split("\n" + str(tmp_path))
    assert len(blocks) == 4 and all(len(block.splitlines()) == 4 for block in blocks)  # name + top 3
    assert "inverted" not in out.splitlines()[0]
    assert sum("(inverted: dark on light)" in line for line in out.splitlines()) == 2
    names = data.class_names("sample")
    assert any(name in out for name in names)

    # The inverted dark-on-light PNG is the light-on-dark one again: same probabilities.
    model = nc.load(run_dir / "model.npz")
    light, flag_light = cli.read_image(paths["light", "png"], (1, 28, 28))
    dark, flag_dark = cli.read_image(paths["dark", "png"], (1, 28, 28))
    assert (flag_light, flag_dark) == (False, True)
    np.testing.assert_allclose(light, dark, atol=1e-6)
    np.testing.assert_allclose(light[0], xt[0, 0], atol=1 / 255)
    jpeg, _ = cli.read_image(paths["dark", "jpg"], (1, 28, 28))
    assert jpeg.shape == (1, 28, 28) and jpeg.dtype == np.float32
    probs = nc.train.predict_proba(model, np.stack([light, jpeg]))
    assert probs.argmax(axis=1)[0] == probs.argmax(axis=1)[1] or probs[1].max() < 0.9


def test_export_and_import_onnx_round_trip(run_dir, tmp_path, capsys):
    pytest.importorskip("onnx")
    status, out, err = run(capsys, "export", str(run_dir), str(tmp_path / "m.onnx"))
    assert status == 0, err
    status, out, err = run(capsys, "import", str(tmp_path / "m.onnx"), str(tmp_path / "back.npz"))
    assert status == 0 and "433,890 parameters" in out, err
    x = data.load("sample")[1][0][:4]
    np.testing.assert_allclose(nc.load(tmp_path / "back.npz").eval().forward(x),
                               nc.load(run_dir / "model.npz").eval().forward(x), rtol=1e-6, atol=1e-6)


def test_bench_hook_passes_its_arguments(monkeypatch, capsys):
    seen = []
    monkeypatch.setitem(sys.modules, "numcnn.bench", types.SimpleNamespace(main=lambda argv: seen.append(argv) or 0))
    assert cli.main(["bench", "--quick", "--only", "conv"]) == 0
    assert seen == [["--quick", "--only", "conv"]]
    monkeypatch.setitem(sys.modules, "numcnn.bench", None)  # as if the module were not installed
    assert_one_error_line(*run(capsys, "bench")[::2])


def test_demo_picks_full_fashion_mnist_or_the_sample(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(cli, "_train_new", lambda settings, out, data_dir, *a, **kw: calls.append((settings, data_dir)) or 0)
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    fashion_found = True
    try:
        data.resolve("fashion-mnist", download=False)
    except nc.DataError:
        fashion_found = False
    assert calls[-1][0]["dataset"] == ("fashion-mnist" if fashion_found else "sample")
    assert calls[-1][0]["model"] == "simple-convnet"

    def missing(*args, **kwargs):
        raise nc.DataError("no fashion-mnist here")

    monkeypatch.setattr(data, "resolve", missing)
    assert cli.main(["demo", "--epochs", "2", "--out", str(tmp_path)]) == 0
    assert calls[-1][0]["dataset"] == "sample" and calls[-1][0]["epochs"] == 2


def test_ctrl_c_exits_130_and_keeps_the_last_epoch(tmp_path, capsys, monkeypatch):
    real = Trainer._train_epoch

    def interrupt_in_epoch_2(self, *args):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupt_in_epoch_2)
    status, out, err = run(capsys, "train", *QUICK, "--epochs", "3", "--out", str(tmp_path / "r"))
    assert_one_error_line(status, err, 130)
    assert "interrupted during epoch 2" in err and f"--resume {tmp_path / 'r'}" in err
    assert read_checkpoint(tmp_path / "r")[1]["epoch"] == 1


def test_divergence_is_one_error_line_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    assert cli.main(["train", *QUICK, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    before = (out / "checkpoint.npz").read_bytes()
    monkeypatch.setattr(nc.SoftmaxCrossEntropy, "forward", lambda self, logits, target: float("nan"))
    status, _, err = run(capsys, "train", "--resume", str(out), "--epochs", "2", "--no-progress")
    assert_one_error_line(status, err)
    assert f"error: training diverged at epoch 2, step 1 (loss nan); last good checkpoint kept in {out}" in err
    assert (out / "checkpoint.npz").read_bytes() == before


def test_a_real_divergence_from_the_command_line(tmp_path, capsys):
    status, _, err = run(capsys, "train", *QUICK, "--model", "mlp", "--optimizer", "sgd", "--lr", "1e38",
                         "--epochs", "2", "--out", str(tmp_path / "r"))
    assert_one_error_line(status, err)
    assert "training diverged at epoch 1" in err and "no checkpoint was written" in err


@pytest.fixture
def corrupt_data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (folder / stem).write_bytes(b"\x00\x00\x08\x03 this is not an IDX file")
    return folder


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "0"],
    ["train", "--epochs", "-3"],
    ["train", "--epochs", "two"],
    ["train", "--batch-size", "0"],
    ["train", "--batch-size", "-1"],
    ["train", "--lr", "-1"],
    ["train", "--lr", "inf"],
    ["train", "--limit", "0"],
    ["train", "--schedule", "sometimes"],
    ["train", "--model", "resnet-1000", "--dataset", "sample"],
    ["train", "--optimizer", "lbfgs", "--dataset", "sample"],
    ["train", "--dataset", "cifar-100"],
    ["train", "--resume", "{tmp}/nowhere"],
    ["train", "--resume", "{tmp}"],
    ["train", "--resume", "{tmp}", "--model", "mlp"],
    ["train", "--dataset", "mnist", "--data-dir", "{tmp}/empty"],
    ["train", "--dataset", "mnist", "--data-dir", "{data}", "--out", "{tmp}/r"],
    ["evaluate", "{tmp}/missing.npz", "--dataset", "sample"],
    ["evaluate", "{tmp}/corrupt.npz", "--dataset", "sample"],
    ["evaluate", "{tmp}/empty", "--dataset", "sample"],
    ["evaluate", "{tmp}/model.npz"],
    ["evaluate", "{tmp}/model.npz", "--dataset", "imagenet"],
    ["predict", "{tmp}/model.npz", "{tmp}/corrupt.npz"],
    ["predict", "{tmp}/model.npz", "{tmp}/absent.png"],
    ["predict", "{tmp}/model.npz", "x.png", "--top", "0"],
    ["summary", "{tmp}/corrupt.npz"],
    ["summary", "not-a-model"],
    ["plot", "{tmp}/nowhere"],
    ["export", "{tmp}/missing.npz", "{tmp}/out.onnx"],
    ["import", "{tmp}/corrupt.npz", "{tmp}/out.npz"],
    ["plot", "{tmp}/empty"],
    ["frobnicate"],
    [],
    ["train", "--no-such-flag"],
])
def test_user_errors_are_one_line_and_exit_2(argv, tmp_path, corrupt_data, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt.npz").write_bytes(b"definitely not a zip archive")
    nc.save(nc.Sequential(nc.Linear(784, 10), input_shape=(1, 28, 28)), tmp_path / "model.npz")
    argv = [arg.format(tmp=tmp_path, data=corrupt_data) for arg in argv]
    status, out, err = run(capsys, *argv)
    assert_one_error_line(status, err)


def test_an_existing_run_is_not_overwritten_by_accident(run_dir, capsys):
    status, _, err = run(capsys, "train", *QUICK, "--out", str(run_dir))
    assert_one_error_line(status, err)
    assert "--resume" in err and "--overwrite" in err


def test_the_console_script_and_python_m_agree(tmp_path):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "numcnn", "train", "--epochs", "0"], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    script = os.path.join(os.path.dirname(sys.executable), "numcnn")
    done = subprocess.run([script, "--help"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "demo" in done.stdout and "bench" in done.stdout
