"""Normalize: per-channel standardisation inside the model, against PyTorch, through save/load,
ONNX (export, onnxruntime, import, and a torch-exported graph) and PyTorch state dicts; and
channel_stats, the training-set statistics it is built from."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import numcnn as nc
from numcnn.data import channel_stats
from numcnn.errors import ConfigError, ShapeError
from parity import DTYPES, assert_close, check_against_torch

REPO = Path(__file__).resolve().parents[1]
MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


def photo_twin():
    """benchmarks/photo_twin.py, the PyTorch twin of image-folder runs (torch only, no numcnn)."""
    spec = importlib.util.spec_from_file_location("photo_twin", REPO / "benchmarks" / "photo_twin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_and_backward_match_pytorch(dtype):
    ours = nc.Normalize(MEAN, STD)
    check_against_torch(ours, photo_twin().Normalize(MEAN, STD), (4, 3, 5, 6), dtype, randomize=False)


def test_any_rank_from_two_on_and_dtype_kept():
    layer = nc.Normalize([1.0, 2.0], [2.0, 4.0])
    x = np.array([[3.0, 6.0], [1.0, 2.0]], np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(layer.backward(np.ones_like(out)), [[0.5, 0.25], [0.5, 0.25]])
    assert nc.gradcheck(nc.Normalize(MEAN, STD), np.random.default_rng(0).random((2, 3, 4, 4)))


@pytest.mark.parametrize("mean, std, message", [
    ([0.5, 0.5], [0.2], "same length"),
    ([0.5], [0.0], "stds > 0"),
    ([np.nan], [1.0], "finite"),
])
def test_bad_statistics_are_refused(mean, std, message):
    with pytest.raises(ConfigError, match=message):
        nc.Normalize(mean, std)


def test_a_wrong_channel_count_names_both():
    with pytest.raises(ShapeError, match="expected 3 channels on axis 1, got 1"):
        nc.Normalize(MEAN, STD).forward(np.zeros((2, 1, 4, 4), np.float32))


def test_saved_with_the_model_and_read_back_exactly(tmp_path):
    model = nc.Sequential(nc.Normalize(MEAN, STD), nc.Conv2d(3, 4, 3), input_shape=(3, 8, 8))
    path = model.save(tmp_path / "m.npz")
    back = nc.load(path)
    assert back[0].config()["mean"] == MEAN  # short decimals in the JSON, not 0.4900000095367432
    x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(back.forward(x), model.forward(x))
    assert "0.mean" in model.state_dict() and "0.std" in model.state_dict()


def test_onnx_export_runs_in_onnxruntime_and_imports_back(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    nc.manual_seed(0)
    model = nc.Sequential(nc.Normalize(MEAN, STD), nc.Conv2d(3, 4, 3), nc.ReLU(), input_shape=(3, 8, 8))
    path = nc.interop.export_onnx(model, tmp_path / "m.onnx")
    x = np.random.default_rng(1).random((2, 3, 8, 8), dtype=np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert_close("onnxruntime", model.forward(x), torch.from_numpy(session.run(None, {"input": x})[0]), np.float32)
    back = nc.interop.import_onnx(path)
    assert [type(layer).__name__ for layer in back] == ["Normalize", "Conv2d", "ReLU"]
    np.testing.assert_array_equal(back[0].buffers["mean"], model[0].buffers["mean"])
    np.testing.assert_array_equal(back[0].buffers["std"], model[0].buffers["std"])
    np.testing.assert_array_equal(back.forward(x), model.forward(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning")
def test_a_torch_exported_normalize_imports_as_one_layer(tmp_path):
    pytest.importorskip("onnx")
    twin = photo_twin()
    torch.manual_seed(0)
    tmodel = torch.nn.Sequential(twin.Normalize(MEAN, STD), torch.nn.Conv2d(3, 2, 3)).eval()
    path = tmp_path / "t.onnx"
    torch.onnx.export(tmodel, torch.zeros(1, 3, 6, 6), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}})
    model = nc.interop.import_onnx(path)
    assert [type(layer).__name__ for layer in model] == ["Normalize", "Conv2d"]
    x = np.random.default_rng(2).random((3, 3, 6, 6), dtype=np.float32)
    assert_close("imported", model.forward(x), tmodel(torch.from_numpy(x)), np.float32)


def test_pytorch_state_dicts_interchange_with_a_normalized_cifar_resnet():
    twin = photo_twin()
    nc.manual_seed(0)
    ours = nc.Sequential(nc.Normalize(MEAN, STD), *nc.zoo.cifar_resnet(num_classes=5, width=4).layers,
                         input_shape=(3, 32, 32))
    theirs = twin.cifar_resnet(5, MEAN, STD, width=4)
    assert list(theirs.state_dict()) == list(ours.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    assert_close("logits", ours.eval().forward(x), theirs.eval()(torch.from_numpy(x)), np.float32)
    torch.manual_seed(1)
    back = twin.cifar_resnet(5, [0.1, 0.2, 0.3], [0.3, 0.2, 0.1], width=4).eval()
    ours.load_state_dict({k: v.numpy() for k, v in back.state_dict().items()})
    assert_close("logits after loading torch's", ours.forward(x), back(torch.from_numpy(x)), np.float32)


@pytest.mark.parametrize("kind", ["uint8", "float32", "float64"])
def test_channel_stats_are_the_moments_of_each_channel(kind):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (50, 3, 7, 9), dtype=np.uint8)
    pixels[:, 2] = 77  # a constant channel: std 1, harmless to divide by
    x = pixels if kind == "uint8" else pixels.astype(kind) / 255
    mean, std = channel_stats(x)
    exact = pixels / 255 if kind == "uint8" else x.astype(np.float64)  # the values as given, in float64
    per_channel = exact.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(mean, per_channel.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(std[:2], per_channel[:2].std(axis=1), rtol=1e-9)
    assert std[2] == 1.0 and mean.dtype == std.dtype == np.float64


def test_channel_stats_refuse_what_is_not_images():
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        channel_stats(np.zeros((4, 28, 28), np.uint8))
