"""ONNX export and import, and PyTorch state dicts, checked against onnxruntime and PyTorch.

Every comparison uses the shared tolerance: max|ours - reference| <= 1e-4 * max|reference|.
"""

import io
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx extra not installed: pip install numcnn[onnx]")
ort = pytest.importorskip("onnxruntime", reason="onnx extra not installed: pip install numcnn[onnx]")

import torch  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from torch import nn  # noqa: E402

import numcnn as nc  # noqa: E402
from numcnn.interop import export_onnx, import_onnx  # noqa: E402
from parity import assert_close  # noqa: E402

# torch.onnx.export(dynamo=False) is the legacy exporter the brief asks for; its notices are expected.
pytestmark = [pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"),
              pytest.mark.filterwarnings("ignore:The feature will be removed"),
              pytest.mark.filterwarnings("ignore:It is recommended that constant folding be turned off")]


# -- helpers -------------------------------------------------------------------------------------
def run_ort(path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def randomize(model, seed=0):
    """Non-trivial biases and batch-norm statistics, so no parameter can hide behind its init."""
    rng = np.random.default_rng(seed)
    for _, layer in model.named_layers():
        for store in (layer.params, layer.buffers):
            for name, value in store.items():
                if name == "running_var":
                    store[name] = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
                elif name == "weight" and isinstance(layer, (nc.BatchNorm1d, nc.BatchNorm2d)):
                    store[name] = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
                elif name in ("bias", "running_mean"):
                    store[name] = (0.3 * rng.standard_normal(value.shape)).astype(value.dtype)
    return model.eval()


def randomize_torch(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.3)
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return module.eval()


def torch_to_onnx(module, x, **kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(module, x, buffer, dynamo=False, opset_version=17, **kwargs)
    return buffer.getvalue()


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def layer_types(model):
    return [type(layer).__name__ for _, layer in model.named_layers()]


# -- numcnn models covering every exportable layer -----------------------------------------------
def conv_stack():
    """Every leaf layer type, 'same' padding with an even kernel (asymmetric pads), groups,
    dilation, both pools with padding, BatchNorm1d after Linear."""
    return nc.Sequential(
        nc.Conv2d(3, 8, 3, padding=1), nc.BatchNorm2d(8), nc.ReLU(), nc.MaxPool2d(3, stride=2, padding=1),
        nc.Conv2d(8, 8, 4, padding="same", groups=2), nc.LeakyReLU(0.2),
        nc.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        nc.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8), nc.Tanh(),
        nc.AvgPool2d(2, padding=1), nc.Conv2d(8, 6, (3, 1), stride=(2, 1), bias=False), nc.Sigmoid(),
        nc.Dropout(0.5), nc.Flatten(), nc.Linear(6 * 1 * 3, 12), nc.BatchNorm1d(12), nc.ReLU(),
        nc.Linear(12, 5), nc.Softmax(), input_shape=(3, 8, 8))


def residual_net():
    """Residual blocks with and without a shortcut, nested containers, Linear fed 4-D input."""
    return nc.Sequential(
        nc.Conv2d(3, 8, 3, padding=1), nc.ReLU(),
        nc.Residual(nc.Conv2d(8, 8, 3, padding=1, bias=False), nc.BatchNorm2d(8), nc.ReLU(),
                    nc.Conv2d(8, 8, 3, padding=1)),
        nc.Residual(nc.Conv2d(8, 16, 3, stride=2, padding=1), nc.ReLU(), nc.Conv2d(16, 16, 1),
                    shortcut=nc.Conv2d(8, 16, 1, stride=2)),
        nc.Sequential(nc.Residual(nc.Residual(nc.Conv2d(16, 16, 3, padding=1)), nc.Tanh()), nc.ReLU()),
        nc.GlobalAvgPool2d(), nc.Linear(16, 4))


def mlp():
    return nc.Sequential(nc.Linear(20, 16), nc.BatchNorm1d(16), nc.LeakyReLU(), nc.Dropout(0.2),
                         nc.Linear(16, 3), nc.Softmax(), input_shape=(20,))


MODELS = {"conv_stack": (conv_stack, (3, 8, 8)), "residual": (residual_net, (3, 8, 8)),
          "mlp": (mlp, (20,))}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each model, randomised, and the ONNX file it exports to."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for i, (name, (build, shape)) in enumerate(MODELS.items()):
        nc.manual_seed(i)
        model = randomize(build(), seed=i)
        out[name] = (model, shape, export_onnx(model, folder / f"{name}.onnx", shape))
    return out


# -- numcnn -> ONNX -> onnxruntime ---------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("name", MODELS)
def test_export_matches_onnxruntime(exported, name, batch):
    model, shape, path = exported[name]
    x = np.random.default_rng(batch).standard_normal((batch, *shape)).astype(np.float32)
    assert_close(f"{name} batch {batch}", run_ort(path, x), model.forward(x), np.float32)


@pytest.mark.parametrize("name", MODELS)
def test_exported_file_passes_checker_with_dynamic_batch(exported, name):
    _, shape, path = exported[name]
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == list(shape)
    assert all(t.data_type == TensorProto.FLOAT for t in proto.graph.initializer)


def test_export_covers_the_op_table(exported):
    ops = {node.op_type for _, _, path in exported.values() for node in onnx.load(str(path)).graph.node}
    assert ops >= {"Conv", "Gemm", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "MaxPool",
                   "AveragePool", "GlobalAveragePool", "BatchNormalization", "Flatten", "Identity", "Add"}


def test_export_keeps_modes_and_takes_nchw_shape(tmp_path):
    model = randomize(conv_stack()).train()
    path = export_onnx(model, tmp_path / "m.onnx", input_shape=(7, 3, 8, 8))  # N is ignored
    assert all(layer.training for _, layer in model.named_layers())
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    assert_close("after export", run_ort(path, x), model.eval().forward(x), np.float32)


def test_export_float64_model_writes_float32(tmp_path):
    model = randomize(nc.Sequential(nc.Conv2d(2, 4, 3, dtype=np.float64), nc.BatchNorm2d(4, dtype=np.float64),
                                    nc.ReLU(), nc.Flatten(), nc.Linear(4 * 4 * 4, 3, dtype=np.float64)))
    path = export_onnx(model, tmp_path / "f64.onnx", (2, 6, 6))
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6))
    assert_close("float64 model", run_ort(path, x), model.forward(x), np.float32)


def test_export_unsupported_layer_names_it(tmp_path):
    class Square(nc.Layer):
        def forward(self, x):
            return x * x

    with pytest.raises(nc.ConfigError, match="Square"):
        export_onnx(nc.Sequential(nc.ReLU(), Square()), tmp_path / "bad.onnx", (3,))
    with pytest.raises(nc.ConfigError, match="input_shape"):
        export_onnx(nc.Sequential(nc.ReLU()), tmp_path / "bad.onnx")
    with pytest.raises(nc.ShapeError, match="Conv2d"):
        export_onnx(nc.Sequential(nc.Conv2d(3, 4, 3)), tmp_path / "bad.onnx", (2, 8, 8))
    assert not (tmp_path / "bad.onnx").exists()


# -- numcnn -> ONNX -> numcnn ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_round_trip_gives_the_same_model(exported, name):
    model, shape, path = exported[name]
    back = import_onnx(path)
    assert back.input_shape == shape
    x = np.random.default_rng(2).standard_normal((4, *shape)).astype(np.float32)
    np.testing.assert_allclose(back.forward(x), model.forward(x), rtol=1e-6, atol=1e-6)
    # The same weights in the same order (an exported Linear on 4-D input comes back with a Flatten).
    ours = [v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    theirs = [v for k, v in back.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert len(ours) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_round_trip_keeps_structure(exported):
    back = import_onnx(exported["residual"][2])
    assert layer_types(back).count("Residual") == 4
    assert isinstance(back[3], nc.Residual) and isinstance(back[3].shortcut, nc.Conv2d)
    back_stack = import_onnx(exported["conv_stack"][2])
    assert back_stack[4].padding == "same" and back_stack[10].stride == (2, 1)
    assert back_stack[6].count_include_pad is False


@pytest.mark.parametrize("padding", [(1, 1, 0, 2), (0, 2, 1, 1), (2, 0, 1, 1), (0, 1, 2, 1)])
def test_round_trip_keeps_each_sides_padding(tmp_path, padding):
    model = nc.Sequential(nc.Conv2d(2, 3, 3, stride=2, padding=padding), input_shape=(2, 7, 8))
    back = import_onnx(export_onnx(model, tmp_path / "pads.onnx"))
    assert back[0].padding == padding
    x = np.random.default_rng(3).standard_normal((2, 2, 7, 8)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), model.forward(x))


# -- PyTorch -> ONNX -> numcnn ---------------------------------------------------------------------------
def torch_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.LeakyReLU(0.1),
        nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 2 * 2, 10), nn.Softmax(dim=1))


@pytest.mark.parametrize("mode", ["folded", "no_folding", "preserve"])
def test_torch_export_imports(tmp_path, mode):
    module = randomize_torch(torch_cnn())
    x = torch.randn(2, 3, 16, 16)
    kwargs = {"folded": {}, "no_folding": {"do_constant_folding": False},
              "preserve": {"training": torch.onnx.TrainingMode.PRESERVE}}[mode]
    model = import_onnx(write(tmp_path, "t.onnx", torch_to_onnx(module, x, **kwargs)))
    assert ("BatchNorm2d" in layer_types(model)) == (mode != "folded")
    assert model.input_shape == (3, 16, 16)
    x5 = torch.randn(5, 3, 16, 16)  # another batch size than the exported one
    with torch.no_grad():
        assert_close(f"torch {mode}", model.forward(x5.numpy()), module(x5), np.float32)


def torch_pools():
    return nn.Sequential(
        nn.Conv2d(3, 6, 4, padding="same"), nn.Sigmoid(), nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=3), nn.Tanh(),
        nn.AvgPool2d(3, stride=1, padding=1), nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        nn.Conv2d(6, 8, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4), nn.BatchNorm1d(4))


@pytest.mark.parametrize("folding", [True, False])
def test_torch_pools_same_padding_and_dynamic_batch(tmp_path, folding):
    module = randomize_torch(torch_pools())
    x = torch.randn(3, 3, 12, 12)
    data = torch_to_onnx(module, x, input_names=["x"], dynamic_axes={"x": {0: "N"}},
                         do_constant_folding=folding)
    model = import_onnx(write(tmp_path, "p.onnx", data))
    assert model[0].padding == "same"
    x1 = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        assert_close("torch pools", model.forward(x1.numpy()), module(x1), np.float32)


class TorchResBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                                  nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.down = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                     if stride != 1 or c_in != c_out else None)

    def forward(self, x):
        return torch.relu(self.body(x) + (self.down(x) if self.down is not None else x))


class TorchFlatMatMul(nn.Module):
    """x.view(N, -1) (a Reshape to a constant shape) and x @ W + b (MatMul then Add)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.w = nn.Parameter(torch.randn(4 * 6 * 6, 5) * 0.1)
        self.b = nn.Parameter(torch.randn(5))

    def forward(self, x):
        h = self.features(x)
        return h.view(h.size(0), -1) @ self.w + self.b


@pytest.mark.parametrize("folding", [True, False])
def test_torch_resnet_imports_as_residual_blocks(tmp_path, folding):
    module = randomize_torch(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), TorchResBlock(8, 8, 1),
                                           TorchResBlock(8, 16, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                           nn.Linear(16, 3)))
    x = torch.randn(2, 3, 8, 8)
    model = import_onnx(write(tmp_path, "r.onnx", torch_to_onnx(module, x, do_constant_folding=folding)))
    blocks = [layer for _, layer in model.named_layers() if isinstance(layer, nc.Residual)]
    assert len(blocks) == 2 and blocks[0].shortcut is None and blocks[1].shortcut is not None
    with torch.no_grad():
        assert_close("torch resnet", model.forward(x.numpy()), module(x), np.float32)


def test_torch_reshape_and_matmul_add(tmp_path):
    module = TorchFlatMatMul().eval()
    x = torch.randn(2, 3, 8, 8)
    model = import_onnx(write(tmp_path, "m.onnx", torch_to_onnx(module, x)))
    assert layer_types(model)[1:] == ["Conv2d", "ReLU", "Flatten", "Linear"]
    assert "bias" in model[3].params
    with torch.no_grad():
        assert_close("reshape + matmul", model.forward(x.numpy()), module(x), np.float32)


# -- hand-built graphs: Gemm variants, Dropout, unsupported ops ---------------------------------------------
def tiny_graph(nodes, initializers=(), in_shape=("N", 4), out_name="y"):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT,
                                                             [f"d{i}" for i in range(len(in_shape))])],
                              initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_gemm_without_transpose_and_dropout(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3)).astype(np.float32)  # (in, out): transB=0
    c = rng.standard_normal((1, 3)).astype(np.float32)
    proto = tiny_graph([helper.make_node("Dropout", ["x"], ["d"], name="drop"),
                        helper.make_node("Identity", ["d"], ["i"], name="id"),
                        helper.make_node("Gemm", ["i", "w", "c"], ["g"], name="gemm", alpha=0.5, beta=2.0),
                        helper.make_node("Relu", ["g"], ["y"], name="relu")],
                       [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(c, "c")])
    onnx.checker.check_model(proto)
    path = tmp_path / "gemm.onnx"
    onnx.save(proto, str(path))
    model = import_onnx(path)
    assert layer_types(model)[1:] == ["Linear", "ReLU"]
    x = rng.standard_normal((6, 4)).astype(np.float32)
    assert_close("gemm transB=0", model.forward(x), run_ort(path, x), np.float32)


@pytest.mark.parametrize("op", ["Erf", "LSTM"])
def test_unsupported_op_names_op_and_node(op):
    node = (helper.make_node("Erf", ["x"], ["y"], name="the_erf") if op == "Erf" else
            helper.make_node("LSTM", ["x", "W", "R"], ["unused", "y"], name="the_lstm", hidden_size=2))
    with pytest.raises(nc.ModelFileError, match=rf"(?s){op}.*the_{op.lower()}|the_{op.lower()}.*{op}"):
        import_onnx(tiny_graph([node]))


def test_torch_log_softmax_is_an_error_naming_it(tmp_path):
    module = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.LogSoftmax(dim=1)).eval()
    path = write(tmp_path, "l.onnx", torch_to_onnx(module, torch.randn(2, 3, 2, 2)))
    with pytest.raises(nc.ModelFileError, match="LogSoftmax"):
        import_onnx(path)


def test_graphs_numcnn_cannot_express_are_errors():
    # Padding on one side only was refused once; it imports now (padding on each side), and the
    # reshape to 3-D below still cannot be expressed.
    w = onnx.numpy_helper.from_array(np.ones((2, 1, 2, 2), np.float32), "w")
    asymmetric = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 0, 0, 0])
    conv = import_onnx(tiny_graph([asymmetric], [w], in_shape=("N", 1, 5, 5)))[0]
    assert conv.padding == (1, 0, 0, 0)
    out = conv.forward(np.ones((1, 1, 5, 5), np.float32))
    assert out.shape == (1, 2, 5, 4) and out[0, 0, 0].tolist() == [2.0] * 4 and out[0, 0, 1].tolist() == [4.0] * 4
    unflatten = helper.make_node("Reshape", ["x", "s"], ["y"], name="to_3d")
    shape = onnx.numpy_helper.from_array(np.array([-1, 2, 2], np.int64), "s")
    with pytest.raises(nc.ModelFileError, match="to_3d"):
        import_onnx(tiny_graph([unflatten], [shape]))


@pytest.mark.parametrize("content", [b"", b"not an onnx file at all\n", bytes(range(256)) * 4,
                                     b"PK\x03\x04 zip header but nothing else"])
def test_garbage_file_is_model_file_error(tmp_path, content):
    with pytest.raises(nc.ModelFileError):
        import_onnx(write(tmp_path, "garbage.onnx", content))


def test_missing_file_is_model_file_error(tmp_path):
    with pytest.raises(nc.ModelFileError, match="no such file"):
        import_onnx(tmp_path / "nope.onnx")


# -- PyTorch state dicts straight into numcnn ---------------------------------------------------------------
def test_torch_state_dict_loads_into_same_structure():
    torch.manual_seed(0)
    module = randomize_torch(nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 3 * 3, 10), nn.Dropout(0.3)))
    ours = nc.Sequential(
        nc.Conv2d(3, 6, 3, padding=1), nc.BatchNorm2d(6), nc.ReLU(), nc.MaxPool2d(2),
        nc.Conv2d(6, 8, 3), nc.AvgPool2d(2), nc.Flatten(), nc.Linear(8 * 3 * 3, 10), nc.Dropout(0.3))
    ours.load_state_dict({k: v.numpy() for k, v in module.state_dict().items()})
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert_close("state dict", ours.eval().forward(x.numpy()), module(x), np.float32)


def test_import_numcnn_does_not_import_onnx():
    code = "import sys, numcnn, numcnn.interop; assert 'onnx' not in sys.modules, 'onnx imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
