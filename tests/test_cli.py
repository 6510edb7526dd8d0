"""The numcnn command: every command once, and every user mistake as one `error:` line, exit 2."""

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import numcnn as nc
from numcnn import cli, data
from numcnn.checkpoint import read_checkpoint
from numcnn.data import datasets
from numcnn.train import Trainer

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


# Test images of the easy classes, as (index in the sample's test set, label, class name):
# one epoch on 1000 sample images is enough to recognise them.
EASY = [(1, 1, "Trouser"), (9, 7, "Sneaker"), (11, 9, "Ankle boot")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One quick trained run shared by the tests that only read it (about 75% right on the sample's
    test set)."""
    out = tmp_path_factory.mktemp("run") / "x"
    assert cli.main(["train", *QUICK, "--limit", "1000", "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def sample_test_set():
    return data.load("sample")[1]


def eval_logits(model, x) -> torch.Tensor:
    """The model's eval-mode logits as a float64 tensor, for torch to take the softmax or loss of."""
    return torch.from_numpy(model.eval().forward(np.asarray(x, dtype=np.float32)).astype(np.float64))


# float32 logits computed in other batches differ in the last bits: probabilities by ~1e-7.
FLOAT32_SLACK = 1e-6


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


def test_evaluate_reports_the_accuracy_and_loss_of_the_model(run_dir, sample_test_set, capsys):
    x_test, y_test = sample_test_set
    logits = eval_logits(nc.load(run_dir / "model.npz"), x_test)
    correct = int(np.sum(logits.argmax(1).numpy() == y_test))
    loss = float(TF.cross_entropy(logits, torch.from_numpy(y_test)))
    assert 600 < correct < 1000  # a trained model, and not a trivial test
    top2 = torch.topk(logits, 2).values
    near_ties = int(torch.sum(top2[:, 0] - top2[:, 1] < 1e-4))  # may go either way in another batching

    status, out, _ = run(capsys, "evaluate", str(run_dir / "model.npz"), "--dataset", "sample", "--json")
    assert status == 0
    result = json.loads(out)
    assert result["samples"] == 1000 and result["dataset"] == "sample"
    assert abs(result["accuracy"] * 1000 - correct) <= near_ties + 1e-9
    assert abs(result["loss"] - loss) <= 1e-5 * loss

    status, out, _ = run(capsys, "evaluate", str(run_dir))  # a run folder; the dataset it recorded
    assert status == 0
    printed = re.search(r"^accuracy (\d+\.\d\d)% \((\d+)/1000\), loss (\d+\.\d{4})$", out, re.MULTILINE)
    assert printed, out
    assert abs(int(printed[2]) - correct) <= near_ties and float(printed[1]) == int(printed[2]) / 10
    assert abs(float(printed[3]) - loss) <= 0.00005 + 1e-5 * loss


def test_summary_of_a_file_and_of_a_zoo_name(run_dir, capsys):
    status, out, _ = run(capsys, "summary", str(run_dir / "model.npz"))
    assert status == 0 and "total params: 433,890" in out and "(N, 30, 24, 24)" in out
    status, out, _ = run(capsys, "summary", "deep-convnet")
    assert status == 0 and "total params: 123,552" in out


def _write_images(folder, image, stem):
    """The same picture four ways: light-on-dark PNG and JPEG, dark-on-light PNG and JPEG (bigger)."""
    from PIL import Image

    pixels = (image * 255).round().astype(np.uint8)
    paths = {}
    for name, array in (("light", pixels), ("dark", 255 - pixels)):
        for ext in ("png", "jpg"):
            path = folder / f"{stem}-{name}.{ext}"
            picture = Image.fromarray(array)
            (picture if ext == "png" else picture.resize((56, 56)).convert("RGB")).save(path)
            paths[name, ext] = path
    return paths


PREDICTION = re.compile(r"^  (\d+)\. (.+?) +(\d+\.\d\d)%$")


def parse_predictions(out, paths, top):
    """{path: (header line, [(rank, class name, percent), ...])} of `numcnn predict` output."""
    lines = out.splitlines()
    assert len(lines) == len(paths) * (1 + top), out
    blocks = {}
    for i, path in enumerate(paths):
        header, *rows = lines[i * (1 + top):(i + 1) * (1 + top)]
        matches = [PREDICTION.match(row) for row in rows]
        assert all(matches), rows
        blocks[path] = header, [(int(m[1]), m[2], float(m[3])) for m in matches]
    return blocks


def assert_top_k(rows, probs, names):
    """rows are ranks 1..k of the k most probable classes, most probable first, with their
    probabilities as percentages to 2 decimals."""
    assert [rank for rank, _, _ in rows] == list(range(1, len(rows) + 1))
    shown = [names.index(name) for _, name, _ in rows]
    assert len(set(shown)) == len(shown)
    for (_, name, percent), k in zip(rows, shown):
        assert abs(percent - 100 * probs[k]) <= 0.005 + 100 * FLOAT32_SLACK, (name, percent, probs[k])
    assert all(probs[a] >= probs[b] - FLOAT32_SLACK for a, b in zip(shown, shown[1:])), rows
    hidden = np.delete(probs, shown)
    assert hidden.size == 0 or probs[shown[-1]] >= hidden.max() - FLOAT32_SLACK


@pytest.mark.parametrize("index, label, name", EASY, ids=[name for _, _, name in EASY])
def test_predict_names_the_true_class_in_png_and_jpeg_either_way_round(index, label, name, run_dir,
                                                                       sample_test_set, tmp_path, capsys):
    x_test, y_test = sample_test_set
    assert y_test[index] == label
    paths = _write_images(tmp_path, x_test[index, 0], name.replace(" ", "_"))
    status, out, err = run(capsys, "predict", str(run_dir), *map(str, paths.values()), "--top", "3")
    assert status == 0, err
    blocks = parse_predictions(out, list(paths.values()), 3)

    model, names = nc.load(run_dir / "model.npz"), data.class_names("sample")
    pixels = (x_test[index] * 255).round() / 255  # what the PNGs hold
    for (kind, ext), path in paths.items():
        header, rows = blocks[path]
        assert header == str(path) + (" (inverted: dark on light)" if kind == "dark" else "")
        assert rows[0][1] == name, f"{path.name}: {rows}"
        if ext == "png":
            image = pixels
        else:  # JPEG blurs and rounds: the picture read back is close to the original, not equal
            image, inverted = data.read_image(path, (1, 28, 28), dark_background=True)
            assert inverted is (kind == "dark") and image.dtype == np.float32
            assert np.abs(image - x_test[index]).mean() < 0.03
        assert_top_k(rows, torch.softmax(eval_logits(model, image[None]), 1)[0].numpy(), names)


@pytest.mark.parametrize("picture, inverted", [
    ("light shape on black", False),
    ("dark shape on white", True),
    ("white fill, black 1-pixel frame", False),  # the frame alone decides, not the mean brightness
    ("black fill, white 1-pixel frame", True),
    ("frame at 120/255", False),
    ("frame at 135/255", True),
    ("top row white, rest black", False),        # the frame's mean: 1/4 white
])
def test_inversion_is_reported_exactly_when_the_border_is_light(picture, inverted, run_dir, tmp_path, capsys):
    from PIL import Image

    pixels = np.zeros((28, 28), np.uint8)
    if picture == "light shape on black":
        pixels[6:22, 9:19] = 230
    elif picture == "dark shape on white":
        pixels[:] = 255
        pixels[6:22, 9:19] = 20
    elif picture.endswith("1-pixel frame"):
        pixels[:] = 255 if picture.startswith("white") else 0
        pixels[[0, -1], :] = pixels[:, [0, -1]] = 0 if picture.startswith("white") else 255
    elif picture.startswith("frame at"):
        pixels[6:22, 9:19] = 200
        pixels[[0, -1], :] = pixels[:, [0, -1]] = int(picture.split()[2].split("/")[0])
    else:
        pixels[0] = 255
    path = tmp_path / "picture.png"
    Image.fromarray(pixels).save(path)

    expected = pixels.astype(np.float32) / 255
    image, flag = data.read_image(path, (1, 28, 28), dark_background=True)
    assert flag is inverted
    np.testing.assert_allclose(image[0], 1 - expected if inverted else expected, atol=1e-6)
    image, flag = data.read_image(path, (1, 28, 28), dark_background=False)  # a model of dark things on light
    assert flag is False
    np.testing.assert_allclose(image[0], expected, atol=1e-6)
    status, out, err = run(capsys, "predict", str(run_dir), str(path), "--top", "1")
    assert status == 0, err
    assert out.splitlines()[0] == str(path) + (" (inverted: dark on light)" if inverted else "")


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


SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def demo(monkeypatch, tmp_path, capsys):
    """Run `numcnn demo ARGS` up to its first training step, in a world with no Fashion-MNIST
    (no $NUMCNN_DATA, an empty cache, no system copy, no network); return (status, stdout, stderr)."""
    monkeypatch.delenv("NUMCNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "system")

    def no_download(*args, **kwargs):
        raise AssertionError("the demo must never download")

    def stop(self, *args):
        raise KeyboardInterrupt  # the data and the model are chosen by now; no need to train

    monkeypatch.setattr(datasets, "fetch", no_download)
    monkeypatch.setattr(Trainer, "_train_epoch", stop)
    return lambda *argv: run(capsys, "demo", "--no-progress", "--no-plots", "--out", str(tmp_path / "r"), *argv)


def _fake_fashion(folder):
    """Two blank images and labels per split: a folder that looks like a dataset."""
    folder.mkdir(parents=True)
    for stem in datasets.FILES:
        data.write_idx(folder / stem, np.zeros((2, 28, 28) if "images" in stem else (2,), np.uint8))


def _data_and_plan(out):
    """The "data: ..." line and the "... N epochs, ..." count the demo printed."""
    data_line = next(line for line in out.splitlines() if line.startswith("data: "))
    return data_line, int(re.search(r", (\d+) epochs, ", out)[1])


def test_demo_without_fashion_mnist_trains_on_the_sample(demo):
    status, out, _ = demo()
    assert status == 130
    assert _data_and_plan(out) == (f"data: sample from bundled sample: {datasets.SAMPLE_DIR} (Fashion-MNIST "
                                   f"subset, 600 train + 100 test per class)", 8)
    assert "model: simple-convnet (" in out
    assert "full Fashion-MNIST is not on this machine; the demo never downloads" in out
    status, out, _ = demo("--epochs", "2")
    assert _data_and_plan(out)[1] == 2 and "data: sample from" in out


def test_demo_with_fashion_mnist_in_numcnn_data_trains_on_it(demo, tmp_path, monkeypatch):
    _fake_fashion(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("NUMCNN_DATA", str(tmp_path / "env"))
    status, out, _ = demo()
    assert status == 130
    assert _data_and_plan(out) == (f"data: fashion-mnist from $NUMCNN_DATA: {tmp_path / 'env' / 'fashion-mnist'}", 3)


def test_demo_data_dir_is_used_or_is_an_error(demo, tmp_path):
    _fake_fashion(tmp_path / "mine")
    status, out, _ = demo("--data-dir", str(tmp_path / "mine"))
    assert status == 130
    assert _data_and_plan(out) == (f"data: fashion-mnist from data_dir argument: {tmp_path / 'mine'}", 3)
    (tmp_path / "empty").mkdir()
    status, out, err = demo("--data-dir", str(tmp_path / "empty"))
    assert_one_error_line(status, err)  # an explicit folder is never swapped for the sample
    assert str(tmp_path / "empty") in err and "data: " not in out


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason=f"needs Debian's dataset-fashion-mnist in {SYSTEM_FASHION}")
def test_demo_trains_on_debians_fashion_mnist(demo, monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", SYSTEM_FASHION.parent)
    status, out, _ = demo()
    assert status == 130
    assert _data_and_plan(out) == (f"data: fashion-mnist from system copy: {SYSTEM_FASHION} (md5 verified)", 3)


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
    assert f"the checkpoint at the end of epoch 1 ({tmp_path / 'r'}) is kept" in err
    assert read_checkpoint(tmp_path / "r")[1]["epoch"] == 1


def test_ctrl_c_names_the_step_checkpoint_on_disk_before_any_epoch_ended(tmp_path, capsys, monkeypatch):
    real = Trainer.save_checkpoint

    def save_then_stop(self):
        path = real(self)
        if self.global_step == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_stop)
    status, _, err = run(capsys, "train", *QUICK, "--epochs", "2", "--checkpoint-every", "2",
                         "--out", str(tmp_path / "r"))
    assert_one_error_line(status, err, 130)
    assert (f"interrupted during epoch 1; the checkpoint at epoch 1, step 2 ({tmp_path / 'r'}) is kept; "
            f"continue with: numcnn train --resume {tmp_path / 'r'}") in err, err
    assert read_checkpoint(tmp_path / "r")[1]["global_step"] == 2


def test_an_abbreviated_flag_is_refused(tmp_path, capsys):
    # The launcher drops its own flags from the ranks' command line by their full spelling only.
    status, _, err = run(capsys, "train", *QUICK, "--max-r", "2", "--out", str(tmp_path / "r"))
    assert_one_error_line(status, err)
    assert "unrecognized arguments: --max-r 2" in err
    assert not (tmp_path / "r").exists()


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
    ["train", "--dataset", "imagenet"],
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


@pytest.mark.parametrize("flags, says", [(["--jitter", "0.5"], "add --augment"),
                                         (["--sync-bn"], "add --processes N")])
def test_a_flag_that_would_do_nothing_alone_is_refused(flags, says, tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = run(capsys, "train", "--dataset", "sample", "--epochs", "1", "--no-plots",
                         "--out", str(out), *flags)
    assert_one_error_line(status, err)
    assert says in err and not out.exists()  # refused before any work


def test_evaluate_on_an_image_folder_matches_its_classes_to_the_models_by_name(run_dir, sample_test_set,
                                                                               tmp_path, capsys):
    """A folder's classes are sorted by name (Sneaker, Trouser), the model's are not (Trouser is
    1, Sneaker 7): labels are matched by name, and the images are read at the model's size."""
    from PIL import Image

    x_test, y_test = sample_test_set
    model = nc.load(run_dir / "model.npz")
    folder = tmp_path / "mine"
    kept = np.flatnonzero((y_test == 1) | (y_test == 7))
    for i in kept:
        name = "Trouser" if y_test[i] == 1 else "Sneaker"
        for split in ("train", "test"):
            (folder / split / name).mkdir(parents=True, exist_ok=True)
            pixels = (np.asarray(x_test[i, 0], dtype=np.float64) * 255).round().astype(np.uint8)
            picture = Image.fromarray(pixels).resize((56, 56))  # another size than the model's
            picture.save(folder / split / name / f"{i}.png")
    status, out, err = run(capsys, "evaluate", str(run_dir), "--dataset", str(folder), "--json")
    assert status == 0, err
    accuracy = json.loads(out)["accuracy"]
    expected = np.mean(eval_logits(model, x_test[kept]).argmax(1).numpy() == y_test[kept])
    assert expected > 0.8 and abs(accuracy - expected) < 0.1  # resized, so not to the image

    (folder / "test" / "Kitten").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "test" / "Kitten" / "0.png")
    status, _, err = run(capsys, "evaluate", str(run_dir), "--dataset", str(folder))
    assert_one_error_line(status, err)
    assert "Kitten" in err


def test_an_unknown_option_points_to_its_commands_help(run_dir, capsys):
    status, _, err = run(capsys, "predict", str(run_dir), "picture.png", "--json")
    assert_one_error_line(status, err)
    assert "numcnn predict: unrecognized arguments: --json (see numcnn predict --help)" in err
