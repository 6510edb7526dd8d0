"""Plots: each function writes a PNG; plot_run redraws a run folder; the core never imports matplotlib."""

import json
import subprocess
import sys

import numpy as np
import pytest

import numcnn as nc
from numcnn import data, viz, zoo
from numcnn.errors import ConfigError, DataError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC, path


@pytest.fixture(scope="module")
def test_images():
    _, (xt, yt) = data.load("sample")
    return xt[:60], yt[:60]


def test_plot_history_skips_missing_validation(tmp_path):
    history = {"epoch": [1, 2, 3], "loss": [1.0, 0.6, 0.5], "accuracy": [0.6, 0.8, 0.85],
               "val_loss": [None, None, None], "val_accuracy": [None, None, None]}
    assert_png(viz.plot_history(history, tmp_path / "h.png"))
    with pytest.raises(DataError):
        viz.plot_history({"epoch": []}, tmp_path / "empty.png")


def test_filters_and_feature_maps(tmp_path, test_images):
    xt, _ = test_images
    nc.manual_seed(0)
    model = zoo.lenet5()
    model.train()
    assert_png(viz.plot_filters(model, tmp_path / "f.png"))
    assert_png(viz.plot_feature_maps(model, xt[0], tmp_path / "m.png"))
    assert model.training  # restored
    assert_png(viz.plot_feature_maps(zoo.fashion_net(width=4), xt[:1], tmp_path / "m2.png"))
    with pytest.raises(ConfigError, match="no Conv2d"):
        viz.plot_filters(zoo.mlp(), tmp_path / "none.png")
    with pytest.raises(nc.ShapeError):
        viz.plot_feature_maps(model, xt[:2], tmp_path / "two.png")


def test_confusion_matrix_counts_and_plot(tmp_path):
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    counts = viz.confusion_matrix(y_true, y_pred, 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert_png(viz.plot_confusion(y_true, y_pred, ["a", "b", "c"], tmp_path / "c.png"))


def test_misclassified_grid(tmp_path, test_images):
    xt, yt = test_images
    names = data.class_names("sample")
    wrong = (yt + 1) % 10
    assert_png(viz.plot_misclassified(xt, yt, wrong, names, tmp_path / "w.png", max_items=7))
    assert_png(viz.plot_misclassified(xt, yt, yt, names, tmp_path / "none.png"))  # nothing wrong


def test_plot_run_redraws_a_run_folder(tmp_path, test_images):
    from numcnn.cli import main

    out = tmp_path / "run"
    assert main(["train", "--dataset", "sample", "--limit", "100", "--test-limit", "50", "--epochs", "1",
                 "--no-progress", "--no-plots", "--out", str(out)]) == 0
    assert not (out / "confusion.png").exists()
    paths = viz.plot_run(out, limit_test=100)
    assert set(paths) == {"history", "filters", "feature_maps", "confusion", "misclassified"}
    for path in paths.values():
        assert path.parent == out
        assert_png(path)
    assert main(["plot", str(out)]) == 0  # the same through the command line
    (out / "history.json").write_text("{not json")
    with pytest.raises(nc.ModelFileError):
        viz.plot_run(out)


def test_importing_numcnn_pulls_in_no_plotting_progress_imaging_or_torch():
    code = ("import sys, numcnn, numcnn.train, numcnn.viz, numcnn.cli, numcnn.zoo, numcnn.data, numcnn.optim\n"
            "heavy = [m for m in ('matplotlib', 'tqdm', 'PIL', 'torch') if m in sys.modules]\n"
            "print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.replace("'", '"')) == []
