"""Pretrained models: packaged from a finished run by scripts/package_pretrained.py, loaded
offline with every checksum verified, refused by name when unknown or corrupted, and reachable
from every command that takes a model (--pretrained NAME). The shipped models themselves are
checked on data the tests did not train them on: the bundled sample's test images."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numcnn as nc
from numcnn import cli, pretrained
from numcnn.errors import ConfigError, ModelFileError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A weights folder holding one small model trained on the sample, packaged by the script."""
    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    assert cli.main(["train", "--dataset", "sample", "--model", "simple-convnet", "--epochs", "1", "--limit", "600",
                     "--val-fraction", "0.2", "--seed", "0", "--out", str(run_dir), "--no-plots", "--no-progress"]) == 0
    folder = tmp_path_factory.mktemp("weights")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "package_pretrained.py"), str(run_dir), "tiny",
                           "--command", "numcnn train ...", "--machine", "a test", "--into", str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder, run_dir


@pytest.fixture
def shipped(weights, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHTS", weights[0])
    return weights


def test_the_packaged_model_is_the_run_and_its_examples_one_per_class(shipped):
    folder, run_dir = shipped
    entry = pretrained.entry("tiny")
    assert entry.model == "simple-convnet" and entry.dataset == "sample" and entry.parameters == 433890
    assert 0.0 < entry.test_accuracy <= 1.0 and "numcnn train" in entry.provenance["command"]
    model = nc.zoo.pretrained("tiny")
    ours = nc.model.read_model(run_dir)[0].state_dict()
    assert all(np.array_equal(model.state_dict()[k], ours[k]) for k in ours)
    assert not model.training
    x, y = pretrained.examples("tiny")
    assert x.dtype == np.uint8 and x.shape == (10, 1, 28, 28) and sorted(y.tolist()) == list(range(10))


def test_an_unknown_name_lists_the_known_ones(shipped):
    with pytest.raises(ConfigError, match=r"no pretrained model named 'fashoin-net'; known: tiny"):
        nc.zoo.pretrained("fashoin-net")


def test_a_corrupted_file_is_a_checksum_error_naming_it(shipped, tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    for path in shipped[0].iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    model_file = folder / pretrained.entry("tiny", folder).file
    raw = bytearray(model_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    model_file.write_bytes(bytes(raw))
    monkeypatch.setattr(pretrained, "WEIGHTS", folder)
    with pytest.raises(ModelFileError, match=rf"{model_file.name}: checksum mismatch"):
        nc.zoo.pretrained("tiny")


@pytest.mark.parametrize("argv", [
    ["evaluate", "--pretrained", "tiny", "--json"],
    ["summary", "--pretrained", "tiny"],
    ["pretrained"],
])
def test_the_commands_take_pretrained(shipped, capsys, argv):
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    if argv[0] == "evaluate":
        assert json.loads(out)["samples"] == 1000
    else:
        assert "tiny" in out or "Conv2d" in out


def test_predict_and_export_take_their_other_arguments_after_pretrained(shipped, tmp_path, capsys):
    from PIL import Image

    x, _ = pretrained.examples("tiny")
    for i in range(2):
        Image.fromarray(x[i, 0]).save(tmp_path / f"{i}.png")
    assert cli.main(["predict", "--pretrained", "tiny", str(tmp_path / "0.png"), str(tmp_path / "1.png")]) == 0
    assert capsys.readouterr().out.count(".png") == 2
    pytest.importorskip("onnx", reason="export needs the onnx extra")
    assert cli.main(["export", "--pretrained", "tiny", str(tmp_path / "tiny.onnx")]) == 0
    assert (tmp_path / "tiny.onnx").is_file()


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--pretrained", "nope"], "no pretrained model named 'nope'; known: tiny"),
    (["evaluate"], "give a model file or run folder, or --pretrained NAME"),
    (["summary", "x.npz", "--pretrained", "tiny"], "give a model or --pretrained NAME, not both"),
    (["predict", "x.npz", "shoe.png", "--pretrained", "tiny"], "give a model or --pretrained NAME, not both"),
])
def test_mistakes_are_one_error_line(shipped, capsys, argv, message):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


SHIPPED = pretrained.available()


@pytest.mark.parametrize("name, floor", [("fashion-net", 0.92), ("simple-convnet", 0.89)])
def test_the_shipped_models_verify_and_classify_the_bundled_sample(name, floor):
    """Not a test of the published figure (that is the full test set, once): the sample's 1000
    test images are from Fashion-MNIST's test set, so the model must do about as well there."""
    if name not in SHIPPED:
        pytest.skip(f"{name} is not shipped in this checkout yet (its training is still running)")
    model = nc.zoo.pretrained(name)
    _, (x, y) = nc.data.load("sample", dtype=None)
    accuracy = nc.inference.evaluate(model, x, y)["accuracy"]
    assert accuracy >= floor
    assert abs(accuracy - SHIPPED[name].test_accuracy) < 0.03
