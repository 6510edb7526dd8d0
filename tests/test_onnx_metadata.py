"""ONNX export -> import keeps a model's training record (class names, dataset, the dark-background
rule, input shape) in the file's metadata_props, so that `numcnn predict` on the imported model
says what it said on the original; files from other tools, without the record, import as before."""

import numpy as np
import pytest

import numcnn as nc
from numcnn import cli, data
from numcnn.errors import ModelFileError
from numcnn.model import read_model

onnx = pytest.importorskip("onnx", reason="onnx extra not installed: pip install numcnn[onnx]")

from numcnn.interop import export_onnx, read_onnx  # noqa: E402
from numcnn.interop._onnx_common import TRAINING_KEY  # noqa: E402


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    assert cli.main(["train", "--dataset", "sample", "--limit", "200", "--test-limit", "100", "--batch-size", "50",
                     "--epochs", "1", "--no-progress", "--no-plots", "--out", str(out)]) == 0
    return out


def test_predict_on_the_imported_model_says_what_it_said_on_the_original(run_dir, tmp_path, capsys):
    from PIL import Image

    # A dark-on-light picture: the record's dark_background rule decides whether it is inverted.
    image = data.load("sample")[1][0][1, 0]
    path = tmp_path / "trouser.png"
    Image.fromarray(255 - (image * 255).round().astype(np.uint8)).save(path)
    assert run(capsys, "export", str(run_dir), str(tmp_path / "m.onnx"))[0] == 0
    status, _, err = run(capsys, "import", str(tmp_path / "m.onnx"), str(tmp_path / "back.npz"))
    assert status == 0, err

    status, original, err = run(capsys, "predict", str(run_dir), str(path), "--top", "10")
    assert status == 0, err
    status, imported, err = run(capsys, "predict", str(tmp_path / "back.npz"), str(path), "--top", "10")
    assert status == 0, err
    assert "(inverted: dark on light)" in original and "Trouser" in original and "class " not in original
    assert imported == original

    model, training = read_model(tmp_path / "back.npz")
    assert training == read_model(run_dir)[1]
    assert model.input_shape == (1, 28, 28)


def test_read_onnx_gives_back_the_record_export_onnx_stored(tmp_path):
    model = nc.Sequential(nc.Flatten(), nc.Linear(12, 3), input_shape=(3, 2, 2))
    record = {"dataset": "folder", "classes": ["cat", "dog", "émeu"], "dark_background": False}
    proto = onnx.load(export_onnx(model, tmp_path / "m.onnx", training=record))
    assert [entry.key for entry in proto.metadata_props] == [TRAINING_KEY]
    back, training = read_onnx(tmp_path / "m.onnx")
    assert training == record and back.input_shape == (3, 2, 2)


def test_a_file_without_the_record_imports_as_before(tmp_path, capsys):
    model = nc.Sequential(nc.Flatten(), nc.Linear(12, 3), input_shape=(3, 2, 2))
    export_onnx(model, tmp_path / "plain.onnx")  # no record, as another tool writes it
    assert not onnx.load(str(tmp_path / "plain.onnx")).metadata_props
    assert read_onnx(tmp_path / "plain.onnx")[1] == {}
    status, _, err = run(capsys, "import", str(tmp_path / "plain.onnx"), str(tmp_path / "plain.npz"))
    assert status == 0, err
    assert read_model(tmp_path / "plain.npz")[1] == {}


@pytest.mark.parametrize("value", ["{not json", "[1, 2]"])
def test_a_broken_record_is_a_model_file_error(tmp_path, capsys, value):
    model = nc.Sequential(nc.Flatten(), nc.Linear(12, 3), input_shape=(3, 2, 2))
    proto = onnx.load(export_onnx(model, tmp_path / "m.onnx"))
    onnx.helper.set_model_props(proto, {TRAINING_KEY: value})
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(ModelFileError, match=TRAINING_KEY):
        read_onnx(tmp_path / "bad.onnx")
    status, _, err = run(capsys, "import", str(tmp_path / "bad.onnx"), str(tmp_path / "bad.npz"))
    assert status == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.npz").exists()
