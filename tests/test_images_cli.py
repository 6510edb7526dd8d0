"""The command line on a folder of colour pictures the test draws: train, resume, evaluate,
predict on a JPEG of another size, plot, export, summary; and the optional pieces (matplotlib,
Pillow) found missing before any work starts."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import numcnn as nc
from numcnn import cli
from numcnn.model import read_model

COLOURS = {"blue": (30, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}
QUICK = ["--model", "simple-convnet", "--batch-size", "10", "--optimizer", "adam", "--lr", "3e-3",
         "--no-progress", "--seed", "0"]


def picture(rgb, rng, size=(12, 12)) -> np.ndarray:
    """A noisy picture of one dominant colour."""
    noise = rng.integers(-40, 41, (*size, 3))
    return np.clip(np.asarray(rgb) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """train/ and test/ folders of three colour classes, 30 + 6 PNG pictures each."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        for part, count in (("train", 30), ("test", 6)):
            (root / part / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(picture(rgb, rng)).save(root / part / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def run_dir(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "colours"
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        assert cli.main(["train", "--dataset", str(photos), *QUICK, "--epochs", "3", "--augment", "--out", str(out)]) == 0
    return out


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_folder_trains_with_its_statistics_and_class_names_in_the_model_file(run_dir, photos):
    model, training = read_model(run_dir)
    assert model.input_shape == (3, 12, 12)
    assert type(model[0]).__name__ == "Normalize"
    pixels = np.stack([np.asarray(Image.open(p)) for p in sorted(photos.glob("train/*/*.png"))]) / 255.0
    np.testing.assert_allclose(model[0].buffers["mean"], pixels.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(model[0].buffers["std"], pixels.std(axis=(0, 1, 2)), rtol=1e-5)
    assert training["classes"] == ["blue", "green", "red"] and training["dataset"] == str(photos)
    history = json.loads((run_dir / "history.json").read_text())
    assert history["val_accuracy"][-1] == 1.0  # three colours: easy, and the test must be able to fail


def test_predict_names_the_class_of_a_jpeg_of_another_size(run_dir, tmp_path, capsys):
    rng = np.random.default_rng(1)
    paths = []
    for name, rgb in COLOURS.items():
        path = tmp_path / f"{name}-50x30.jpg"
        Image.fromarray(picture(rgb, rng, (30, 50))).save(path, quality=90)
        paths.append(path)
    status, out, err = run(capsys, "predict", run_dir, *paths, "--top", "1")
    assert status == 0, err
    lines = out.splitlines()
    for i, name in enumerate(COLOURS):
        assert lines[2 * i] == str(paths[i])  # no "(inverted ...)": a colour model is never inverted
        assert lines[2 * i + 1].split()[1] == name, out


def test_evaluate_reads_the_folder_as_the_run_did(run_dir, capsys, monkeypatch, tmp_path):
    status, out, err = run(capsys, "evaluate", run_dir, "--json")
    assert status == 0, err
    result = json.loads(out)
    history = json.loads((run_dir / "history.json").read_text())
    assert result["samples"] == 18 and result["accuracy"] == history["val_accuracy"][-1]
    moved = __import__("shutil").copytree(read_model(run_dir)[1]["dataset"], tmp_path / "moved")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    status, out, err = run(capsys, "evaluate", run_dir, "--data-dir", moved, "--json")  # the folder moved
    assert status == 0, err
    assert json.loads(out)["accuracy"] == result["accuracy"] and json.loads(out)["source"].startswith(f"image folder: {moved} (")


def test_plots_show_colour(run_dir, capsys):
    status, out, err = run(capsys, "plot", run_dir)
    assert status == 0, err
    for name in ("filters", "feature_maps", "confusion", "misclassified", "learning_curves"):
        assert (run_dir / f"{name}.png").is_file()
    inputs = np.asarray(Image.open(run_dir / "feature_maps.png").convert("RGB")).astype(int)
    assert np.abs(inputs[..., 0] - inputs[..., 2]).max() > 100  # a colour picture, not gray maps only


def test_onnx_export_and_summary_of_a_colour_model(run_dir, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    status, _, err = run(capsys, "export", run_dir, tmp_path / "m.onnx")
    assert status == 0, err
    model, _ = read_model(run_dir)
    x = np.random.default_rng(0).random((4, 3, 12, 12), dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    expected = model.eval().forward(x)
    got = session.run(None, {"input": x})[0]
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    status, out, _ = run(capsys, "summary", run_dir)
    assert status == 0 and "input: (3, 12, 12)" in out and "Normalize" in out


def test_a_resumed_folder_run_ends_as_an_uninterrupted_one(photos, tmp_path, capsys, monkeypatch):
    import shutil

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    flags = [*QUICK, "--augment", "--jitter", "0.3", "--no-plots"]
    assert run(capsys, "train", "--dataset", photos, *flags, "--epochs", "2", "--out", tmp_path / "whole")[0] == 0
    first = shutil.copytree(photos, tmp_path / "first")
    assert run(capsys, "train", "--dataset", first, *flags, "--epochs", "1", "--out", tmp_path / "part")[0] == 0
    moved = first.rename(tmp_path / "moved")
    status, out, err = run(capsys, "train", "--resume", tmp_path / "part", "--epochs", "2", "--no-progress")
    assert status == 2 and out == ""
    assert err.strip().splitlines() == [f"error: {tmp_path / 'part'}: the run's image folder {first} is gone; give "
                                        f"its new place with data_dir (--data-dir)"]
    status, out, err = run(capsys, "train", "--resume", tmp_path / "part", "--epochs", "2", "--data-dir", moved,
                           "--no-plots", "--no-progress")
    assert status == 0, err
    assert f"image folder: {moved}" in out
    whole, part = nc.load(tmp_path / "whole"), nc.load(tmp_path / "part")
    for key, value in whole.state_dict().items():
        np.testing.assert_array_equal(part.state_dict()[key], value, err_msg=key)
    assert read_model(tmp_path / "part")[1]["dataset"] == str(moved)


def test_a_run_does_not_resume_on_data_that_changed(photos, tmp_path, capsys, monkeypatch):
    import shutil

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    flags = [*QUICK, "--no-plots", "--epochs", "1"]
    copy = shutil.copytree(photos, tmp_path / "copy")
    assert run(capsys, "train", "--dataset", copy, *flags, "--out", tmp_path / "run")[0] == 0
    first_class = sorted(p.name for p in (copy / "train").iterdir())[0]
    for part in ("train", "test"):  # a class renamed: every label may now mean another class
        (copy / part / first_class).rename(copy / part / "zzz")
    status, _, err = run(capsys, "train", "--resume", tmp_path / "run", "--epochs", "2")
    assert status == 2 and "not what the run trained on" in err and "zzz" in err
    for part in ("train", "test"):
        (copy / part / "zzz").rename(copy / part / first_class)
    removed = min((copy / "train" / first_class).iterdir())
    removed.unlink()  # one picture fewer
    status, _, err = run(capsys, "train", "--resume", tmp_path / "run", "--epochs", "2")
    assert status == 2 and "images were added, removed or moved" in err
    shutil.copy(photos / "train" / first_class / removed.name, removed)  # the same files again: it resumes
    assert run(capsys, "train", "--resume", tmp_path / "run", "--epochs", "2", "--no-plots")[0] == 0


def test_missing_matplotlib_skips_the_plots_with_a_note_before_any_work(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    status, out, err = run(capsys, "train", "--dataset", photos, *QUICK, "--epochs", "1", "--out", tmp_path / "r")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "note: plots will be skipped: matplotlib is not installed (pip install 'numcnn[train]')"
    assert "test accuracy" in out and not list((tmp_path / "r").glob("*.png"))
    status, _, err = run(capsys, "plot", tmp_path / "r")
    assert status == 2 and err.strip().splitlines() == ["error: matplotlib is not installed (pip install "
                                                        "'numcnn[train]')"]


def test_missing_pillow_stops_an_image_folder_run_at_once(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    start = time.perf_counter()
    status, out, err = run(capsys, "train", "--dataset", photos, *QUICK, "--out", tmp_path / "r")
    assert time.perf_counter() - start < 1.0
    assert status == 2 and out == ""
    assert err.strip().splitlines() == ["error: reading images needs Pillow, which is not installed: "
                                        "pip install 'numcnn[train]'"]
    assert not (tmp_path / "r").exists()


def test_predict_on_a_decompression_bomb_is_one_error_line(run_dir, tmp_path, capsys):
    """A PNG whose header declares 60000 x 60000 pixels: Pillow refuses to decode it, and
    predict says so in one line with exit status 2, as serve answers 413."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    status, out, err = run(capsys, "predict", run_dir, bomb)
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "too large to decode" in err
    assert "Traceback" not in err


def test_evaluating_on_another_dataset_matches_labels_by_class_name(tmp_path, capsys):
    # A model that learned the sample's classes in reverse order (as a folder sorted by name
    # might have them) is scored on the sample itself: its labels must be read through the names.
    names = list(nc.data.class_names("sample"))
    nc.manual_seed(0)
    model = nc.Sequential(nc.Flatten(), nc.Linear(784, 10), input_shape=(1, 28, 28))
    path = tmp_path / "model.npz"
    nc.save(model, path, {"training": {"dataset": str(tmp_path / "photos"), "classes": names[::-1]}})
    status, out, _ = run(capsys, "evaluate", path, "--dataset", "sample", "--json")
    assert status == 0
    _, (x, y) = nc.data.load("sample")
    predicted = model.forward(x).argmax(axis=1)
    assert json.loads(out)["accuracy"] == pytest.approx(np.mean(predicted == 9 - y))
    # Names the model does not know cannot be scored at all.
    nc.save(model, path, {"training": {"dataset": str(tmp_path / "photos"),
                                       "classes": [name.replace("/", "_") for name in names]}})
    status, _, err = run(capsys, "evaluate", path, "--dataset", "sample")
    assert status == 2 and "T-shirt/top" in err


def test_output_on_an_ascii_terminal_escapes_what_it_cannot_write(run_dir, photos, tmp_path):
    named = tmp_path / "图ü.png"
    named.write_bytes(next(photos.rglob("*.png")).read_bytes())
    done = subprocess.run([sys.executable, "-m", "numcnn", "predict", str(run_dir), str(named)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    assert "\\u56fe\\xfc.png" in done.stdout
