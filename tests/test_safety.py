"""Nothing a user saved may be lost, and a mistake is one error line: outputs that would
replace an input or an existing file, run folders holding a run, plots of an old run, file
modes, one-class folders, out-of-range ports and image sizes, running out of memory."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import numcnn as nc
from numcnn import cli, rundir
from numcnn.data import folder as folders
from numcnn.errors import ConfigError, DataError
from numcnn.io import atomic_savez, atomic_write_bytes
from numcnn.rundir import PLOTS


def run(capsys, *argv):
    """(exit status, stderr) of the command line; stderr must be one `error:` line on failure."""
    status = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    if status != 0:
        assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return status, err


def small_model(path):
    model = nc.Sequential(nc.Flatten(), nc.Linear(12, 3), input_shape=(3, 2, 2))
    return Path(model.save(path))


# -- export and import never write over their input, nor over a file without --overwrite ----------
def test_export_refuses_to_write_over_its_own_input(tmp_path, capsys):
    path = small_model(tmp_path / "model.npz")
    before = path.read_bytes()
    status, err = run(capsys, "export", path, path, "--overwrite")  # not even with --overwrite
    assert status == 2 and "input" in err
    status, err = run(capsys, "export", tmp_path, path, "--overwrite")  # the run folder's model.npz
    assert status == 2 and "input" in err
    assert path.read_bytes() == before


def test_export_refuses_an_existing_output_unless_overwrite(tmp_path, capsys):
    pytest.importorskip("onnx", reason="onnx extra not installed: pip install numcnn[onnx]")
    path = small_model(tmp_path / "model.npz")
    out = tmp_path / "kept.onnx"
    out.write_bytes(b"the user's file")
    status, err = run(capsys, "export", path, out)
    assert status == 2 and "--overwrite" in err and out.read_bytes() == b"the user's file"
    assert run(capsys, "export", path, out, "--overwrite")[0] == 0
    assert out.read_bytes() != b"the user's file" and out.stat().st_size > 100


def test_import_refuses_to_write_over_a_model_unless_overwrite(tmp_path, capsys):
    pytest.importorskip("onnx", reason="onnx extra not installed: pip install numcnn[onnx]")
    model = small_model(tmp_path / "run" / "model.npz")
    onnx_file = tmp_path / "m.onnx"
    assert run(capsys, "export", model, onnx_file)[0] == 0
    before = model.read_bytes()
    status, err = run(capsys, "import", onnx_file, model)
    assert status == 2 and "--overwrite" in err and model.read_bytes() == before
    # without the suffix, the file written is still run/model.npz: refused alike
    status, err = run(capsys, "import", onnx_file, tmp_path / "run" / "model")
    assert status == 2 and model.read_bytes() == before
    same = tmp_path / "m.npz"  # an ONNX file named .npz, written over itself
    same.write_bytes(onnx_file.read_bytes())
    status, err = run(capsys, "import", same, same, "--overwrite")
    assert status == 2 and "input" in err and same.read_bytes() == onnx_file.read_bytes()
    assert run(capsys, "import", onnx_file, model, "--overwrite")[0] == 0
    assert nc.load(model).num_params() == 39


# -- run folders ----------------------------------------------------------------------------------
@pytest.mark.parametrize("held", [["model.npz"], ["history.json"], ["model.npz", "history.json"]])
def test_a_run_folder_without_a_checkpoint_is_not_replaced_silently(tmp_path, held):
    for name in held:
        (tmp_path / name).write_bytes(b"saved")
    with pytest.raises(ConfigError, match="already holds a run.*--overwrite"):
        rundir.start(tmp_path)
    assert all((tmp_path / name).read_bytes() == b"saved" for name in held)
    assert rundir.start(tmp_path, overwrite=True) == tmp_path


def test_train_refuses_a_folder_holding_a_model(tmp_path, capsys):
    (tmp_path / "model.npz").write_bytes(b"saved")
    status, err = run(capsys, "train", "--dataset", "sample", "--model", "mlp", "--epochs", "1",
                      "--no-plots", "--no-progress", "--out", tmp_path)
    assert status == 2 and "already holds a run" in err and "--overwrite" in err
    assert (tmp_path / "model.npz").read_bytes() == b"saved"


def test_demo_refuses_an_existing_run_unless_overwrite(tmp_path, capsys):
    (tmp_path / "checkpoint.npz").write_bytes(b"saved")
    status, err = run(capsys, "demo", "--out", tmp_path, "--epochs", "1", "--no-plots", "--no-progress")
    assert status == 2 and "already holds a run" in err and "--overwrite" in err
    assert (tmp_path / "checkpoint.npz").read_bytes() == b"saved"


def test_a_failed_overwrite_destroys_nothing(tmp_path, capsys):
    # --overwrite replaces the old run only once the new one is built: here its data cannot be read.
    out = tmp_path / "run"
    assert run(capsys, "train", "--dataset", "sample", "--model", "mlp", "--limit", "100", "--test-limit", "10",
               "--epochs", "1", "--no-plots", "--no-progress", "--out", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = tmp_path / "broken"
    for label in ("a", "b"):
        (broken / label).mkdir(parents=True)
        (broken / label / "x.png").write_bytes(b"not a picture")
    status, err = run(capsys, "train", "--dataset", broken, "--image-size", "8", "--epochs", "1", "--no-plots",
                      "--no-progress", "--out", out, "--overwrite")
    assert status == 2 and "could be read" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_users_file_named_like_a_plot_is_not_replaced(tmp_path, capsys):
    (tmp_path / PLOTS["history"]).write_bytes(b"my own figure")
    status, err = run(capsys, "train", "--dataset", "sample", "--model", "mlp", "--limit", "100",
                      "--test-limit", "10", "--epochs", "1", "--no-progress", "--out", tmp_path)
    assert status == 2 and PLOTS["history"] in err and "--overwrite" in err
    assert (tmp_path / PLOTS["history"]).read_bytes() == b"my own figure"


def test_a_run_folder_under_a_file_or_inside_its_image_folder_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    status, err = run(capsys, "train", "--dataset", "sample", "--model", "mlp", "--epochs", "1",
                      "--no-progress", "--out", tmp_path / "notes.txt" / "run")
    assert status == 2 and "is a file" in err
    photos = tmp_path / "photos"
    for label in ("a", "b"):
        for i in range(2):
            (photos / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(photos / label / f"{i}.png")
    status, err = run(capsys, "train", "--dataset", photos, "--epochs", "1", "--no-progress",
                      "--out", photos / "runs" / "x")
    assert status == 2 and "inside the image folder" in err and not (photos / "runs").exists()


def test_make_demo_passes_overwrite_so_it_can_run_twice():
    makefile = (os.path.dirname(__file__) + "/../Makefile")
    recipe_line = next(line for line in open(makefile) if "numcnn demo" in line)
    assert "--overwrite" in recipe_line


def test_overwrite_removes_the_old_runs_plots_and_nothing_the_user_put_there(tmp_path):
    (tmp_path / "checkpoint.npz").write_bytes(b"old")
    for name in PLOTS.values():
        (tmp_path / name).write_bytes(b"old plot")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "photo.png").write_bytes(b"mine too")
    rundir.start(tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "photo.png"]


# -- file modes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_writes_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        written = [atomic_write_bytes(tmp_path / "history.json", b"{}"),
                   atomic_savez(tmp_path / "model.npz", {"w": np.zeros(2)}, {})]
    finally:
        os.umask(old)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


# -- image folders --------------------------------------------------------------------------------
def test_an_image_folder_with_one_class_is_a_data_error_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for i in range(4):
        path = tmp_path / "pics" / "cats" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(path)
    with pytest.raises(DataError, match=r"needs at least 2 classes, found 1 \(cats only\)"):
        folders.open_folder(tmp_path / "pics")


# -- argument ranges and memory -------------------------------------------------------------------
@pytest.mark.parametrize("port", ["70000", "65536", "-1"])
def test_serve_port_outside_0_to_65535_is_one_error_line(capsys, port):
    status, err = run(capsys, "serve", "runs/demo", "--port", port)
    assert status == 2 and "--port" in err and "65535" in err


def test_image_size_is_bounded(tmp_path, capsys):
    status, err = run(capsys, "train", "--dataset", tmp_path, "--image-size", "50000")
    assert status == 2 and "--image-size" in err and "4096" in err
    with pytest.raises(ConfigError, match="4096"):
        folders.open_folder(tmp_path, image_size=50000)


def test_running_out_of_memory_is_one_error_line(monkeypatch, capsys):
    def greedy(args):
        raise MemoryError("Unable to allocate 7.45 GiB")

    monkeypatch.setitem(cli.COMMANDS, "summary", greedy)
    status, err = run(capsys, "summary", "mlp")
    assert status == 2 and err == "error: out of memory: Unable to allocate 7.45 GiB\n"


def test_plot_into_another_folder_keeps_a_users_file_of_a_plots_name(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="plots need the train extra")
    (tmp_path / PLOTS["confusion"]).write_bytes(b"my own figure")
    status, err = run(capsys, "plot", "--pretrained", "simple-convnet", "--dataset", "sample", "--out", tmp_path)
    assert status == 2 and PLOTS["confusion"] in err and "--overwrite" in err
    assert (tmp_path / PLOTS["confusion"]).read_bytes() == b"my own figure"
