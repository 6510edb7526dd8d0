"""Sequential / Residual, state dicts with PyTorch keys, and the .npz model file (incl. hostile files)."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import numcnn as nc
from numcnn.io import META_KEY, read_npz

from parity import assert_close


def small_model(dtype=np.float32):
    nc.manual_seed(0)
    return nc.Sequential(
        nc.Conv2d(1, 4, 3, padding=1, dtype=dtype), nc.BatchNorm2d(4, dtype=dtype), nc.ReLU(),
        nc.MaxPool2d(2),
        nc.Residual(nc.Conv2d(4, 4, 3, padding=1, dtype=dtype), nc.ReLU()),
        nc.Dropout(0.25), nc.Flatten(), nc.Linear(4 * 4 * 4, 3, dtype=dtype),
        input_shape=(1, 8, 8))


def torch_twin():
    block = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU())
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), block, torch.nn.Dropout(0.25), torch.nn.Flatten(),
        torch.nn.Linear(16 * 4, 3))


class Skip(torch.nn.Module):
    """torch has no residual container; this one keys its children like nc.Residual."""

    def __init__(self, body):
        super().__init__()
        for i, layer in enumerate(body):
            self.add_module(str(i), layer)

    def forward(self, x):
        out = x
        for layer in self.children():
            out = layer(out)
        return x + out


def test_state_dict_keys_follow_pytorch():
    keys = list(small_model().state_dict())
    assert keys == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                    "1.num_batches_tracked", "4.0.weight", "4.0.bias", "7.weight", "7.bias"]


def test_a_torch_state_dict_loads_and_gives_the_same_outputs():
    tm = torch_twin()
    tm[4] = Skip(list(tm[4]))
    with torch.no_grad():  # non-trivial running statistics
        tm[1].running_mean.uniform_(-1, 1)
        tm[1].running_var.uniform_(0.5, 2)
    tm.eval()
    model = small_model().eval()
    model.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    assert_close("output", model.forward(x), tm(torch.tensor(x)).detach().numpy(), np.float32)


def test_residual_backward_adds_the_skip_gradient():
    nc.manual_seed(1)
    block = nc.Residual(nc.Conv2d(2, 2, 3, padding=1, dtype=np.float64), nc.Tanh())
    assert nc.gradcheck(block, np.random.default_rng(0).standard_normal((2, 2, 5, 5)))
    with_shortcut = nc.Residual(nc.Conv2d(2, 3, 3, padding=1, dtype=np.float64),
                                shortcut=nc.Conv2d(2, 3, 1, dtype=np.float64))
    assert nc.gradcheck(with_shortcut, np.random.default_rng(1).standard_normal((2, 2, 4, 4)))


def test_backward_params_gives_backwards_gradients_and_skips_what_only_the_input_needs():
    def model():
        nc.manual_seed(2)
        return nc.Sequential(nc.ReLU(), nc.Sequential(small_model(np.float64), nc.Tanh()), nc.Linear(3, 2, dtype=np.float64))
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8))
    dout = np.random.default_rng(1).standard_normal((4, 2))
    full, lean = model(), model()
    for m in (full, lean):
        m.seed(3)
        m.forward(x)
    assert full.backward(dout).shape == x.shape

    def refuse(_):
        raise AssertionError("a layer before the first trainable one ran its backward")
    lean[0].backward = refuse
    first_conv = lean[1][0][0]
    first_conv.backward = lambda dout, input_grad=True: (
        refuse(dout) if input_grad else type(first_conv).backward(first_conv, dout, input_grad))
    assert lean.backward_params(dout) is None
    expected = dict(full.gradients())
    got = dict(lean.gradients())
    assert list(got) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("leading", [True, False], ids=["conv-relu first", "after other layers"])
def test_sequential_fuses_each_relu_into_the_layer_before_it_and_matches_them_run_apart_bit_for_bit(
        leading, training):
    """Sequential runs a Conv2d, a BatchNorm or a Residual block and the ReLU right after it as
    one layer (the ReLU's own forward and backward never run); outputs, input gradient and every
    parameter gradient equal those of the layers run one by one, through backward and through
    backward_params alike."""
    def model():
        nc.manual_seed(4)
        body = [nc.Conv2d(3, 5, 3, padding=1), nc.ReLU(), nc.Conv2d(5, 6, 3, stride=2), nc.ReLU(),
                nc.Conv2d(6, 6, 1), nc.BatchNorm2d(6), nc.ReLU(),
                nc.Residual(nc.Conv2d(6, 6, 3, padding=1, bias=False), nc.BatchNorm2d(6), nc.ReLU(),
                            nc.Conv2d(6, 6, 3, padding=1)), nc.ReLU(),
                nc.Residual(nc.Conv2d(6, 4, 1), shortcut=nc.Conv2d(6, 4, 1)), nc.ReLU(),
                nc.Tanh(), nc.Flatten(), nc.Linear(4 * 3 * 3, 2)]
        return nc.Sequential(*([] if leading else [nc.ReLU(), nc.MaxPool2d(1)]) + body).train(training)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    dout = rng.standard_normal((4, 2)).astype(np.float32)
    fused, apart = model(), model()
    relus = [layer for _, layer in fused.named_layers() if type(layer) is nc.ReLU][-6:]  # the fused ones
    for relu in relus:
        relu.forward = relu.backward = lambda *_: pytest.fail("a fused ReLU ran on its own")

    def run_apart(container, x):
        for layer in container:
            x = layer.forward(x) if type(layer) is not nc.Residual else (
                run_apart(layer, x) + (layer.shortcut.forward(x) if layer.shortcut else x))
        return x

    def back_apart(container, dout):
        for layer in reversed(container.layers):
            dout = layer.backward(dout) if type(layer) is not nc.Residual else (
                back_apart(layer, dout) + (layer.shortcut.backward(dout) if layer.shortcut else dout))
        return dout

    out = fused.forward(x)
    np.testing.assert_array_equal(out, run_apart(apart, x))
    np.testing.assert_array_equal(fused.backward(dout), back_apart(apart, dout))
    grads = dict(apart.gradients())
    for name, grad in fused.gradients():
        np.testing.assert_array_equal(grad, grads[name], err_msg=name)
    fused.zero_grad()
    fused.forward(x)
    fused.backward_params(dout)
    for name, grad in fused.gradients():
        np.testing.assert_array_equal(grad, grads[name], err_msg=f"backward_params: {name}")


@pytest.mark.parametrize("body_has_params", [True, False])
def test_backward_params_trains_the_shortcut_of_a_leading_residual_block(body_has_params):
    def model():
        nc.manual_seed(5)
        body = [nc.Conv2d(3, 4, 3, padding=1, dtype=np.float64), nc.ReLU()] if body_has_params else [nc.ReLU()]
        shortcut = nc.Conv2d(3, 4 if body_has_params else 3, 1, dtype=np.float64)
        return nc.Sequential(nc.Residual(*body, shortcut=shortcut), nc.Flatten(),
                             nc.Linear((4 if body_has_params else 3) * 36, 2, dtype=np.float64))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    dout = np.random.default_rng(1).standard_normal((2, 2))
    full, lean = model(), model()
    full.forward(x)
    full.backward(dout)
    lean.forward(x)
    lean.zero_grad()
    lean.backward_params(dout)
    expected, got = dict(full.gradients()), dict(lean.gradients())
    assert "0.shortcut.weight" in got
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_backward_params_matches_backward(dtype):
    nc.manual_seed(4)
    layer = nc.Linear(6, 3, dtype=dtype)
    rng = np.random.default_rng(0)
    layer.forward(rng.standard_normal((5, 2, 3)).astype(dtype))
    dout = rng.standard_normal((5, 3)).astype(dtype)
    assert layer.backward(dout).shape == (5, 2, 3)
    expected = {k: v.copy() for k, v in layer.grads.items()}
    layer.zero_grad()
    assert layer.backward_params(dout) is None
    for key in expected:
        np.testing.assert_array_equal(layer.grads[key], expected[key])


def test_residual_shape_mismatch_is_a_clear_error():
    block = nc.Residual(nc.Conv2d(2, 3, 3, padding=1))
    with pytest.raises(nc.ShapeError, match="shortcut"):
        block.forward(np.zeros((1, 2, 4, 4), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_and_load_round_trip(tmp_path, dtype):
    model = small_model(dtype)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(dtype)
    model.train().forward(x)  # move the running statistics
    path = model.save(tmp_path / "m.npz")
    back = nc.load(path)
    assert back.input_shape == (1, 8, 8)
    for key, value in model.state_dict().items():
        saved = back.state_dict()[key]
        assert saved.dtype == value.dtype and np.array_equal(saved, value), key
    np.testing.assert_array_equal(back.eval().forward(x), model.eval().forward(x))


def test_summary_lists_shapes_and_params():
    text = small_model().summary()
    assert "(N, 4, 8, 8)" in text and "(N, 3)" in text
    assert f"{small_model().num_params():,}" in text


def test_load_state_dict_rejects_what_does_not_fit():
    model = small_model()
    good = model.state_dict()
    with pytest.raises(nc.ModelFileError, match="missing keys"):
        model.load_state_dict({k: v for k, v in good.items() if k != "0.bias"})
    with pytest.raises(nc.ModelFileError, match="unexpected keys"):
        model.load_state_dict({**good, "9.weight": np.zeros(3)})
    with pytest.raises(nc.ModelFileError, match=r"expected shape \(4,\)"):
        model.load_state_dict({**good, "0.bias": np.zeros(5, np.float32)})
    with pytest.raises(nc.ModelFileError, match="expected a float array"):
        model.load_state_dict({**good, "0.bias": np.zeros(4, np.int32)})
    with pytest.raises(nc.ModelFileError, match="expected an integer array"):
        model.load_state_dict({**good, "1.num_batches_tracked": np.array(2.5)})
    with pytest.raises(nc.ModelFileError, match="NaN"):
        model.load_state_dict({**good, "0.bias": np.full(4, np.nan, np.float32)})
    # nothing was half-applied
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in good.items())


def _write_npz(path, arrays, meta=None, **kwargs):
    payload = dict(arrays)
    if meta is not None:
        payload[META_KEY] = np.array(json.dumps(meta))
    np.savez(path, **payload, **kwargs)


def test_hostile_model_files_are_model_file_errors(tmp_path):
    good = tmp_path / "good.npz"
    small_model().save(good)
    arrays, meta = read_npz(good)

    cases = {}
    cases["missing"] = tmp_path / "nope.npz"
    (tmp_path / "text.npz").write_text("hello")
    cases["not a zip"] = tmp_path / "text.npz"
    cases["folder"] = tmp_path
    _write_npz(tmp_path / "nometa.npz", arrays)
    cases["no metadata"] = tmp_path / "nometa.npz"
    _write_npz(tmp_path / "wrongshape.npz", {**arrays, "0.weight": np.zeros((4, 1, 5, 5), np.float32)}, meta)
    cases["wrong shape"] = tmp_path / "wrongshape.npz"
    _write_npz(tmp_path / "wrongarch.npz", arrays, {**meta, "architecture": {"type": "Conv3d"}})
    cases["unknown layer"] = tmp_path / "wrongarch.npz"
    _write_npz(tmp_path / "badargs.npz", arrays,
               {**meta, "architecture": {"type": "Conv2d", "config": {"in_channels": -1}}})
    cases["bad constructor args"] = tmp_path / "badargs.npz"
    np.savez(tmp_path / "pickled.npz", **{"0.weight": np.array([{"evil": 1}], dtype=object)},
             **{META_KEY: np.array(json.dumps(meta))})
    cases["object array"] = tmp_path / "pickled.npz"
    for i, shape in enumerate(([3, "a", 32], [1, -28, 28], [3, 10**12, 10**12], [])):
        architecture = {**meta["architecture"], "config": {**meta["architecture"].get("config", {}), "input_shape": shape}}
        _write_npz(tmp_path / f"shape{i}.npz", arrays, {**meta, "architecture": architecture})
        cases[f"input_shape {shape}"] = tmp_path / f"shape{i}.npz"
    raw = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = tmp_path / "truncated.npz"

    for what, path in cases.items():
        with pytest.raises(nc.ModelFileError):
            nc.load(path)


def test_a_header_claiming_an_absurd_size_is_rejected_before_allocating(tmp_path):
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(b"\0" * 64)
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("0.weight.npy", buffer.getvalue())
    with pytest.raises(nc.ModelFileError, match="claims shape"):
        nc.load(path)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fuzzed_model_files_only_raise_model_file_error(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    good = folder / "good.npz"
    small_model().save(good)
    raw = bytearray(good.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        where = data.draw(st.integers(0, len(raw) - 1))
        raw[where] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    bad = folder / "bad.npz"
    bad.write_bytes(bytes(raw[:cut]))
    try:
        model = nc.load(bad)
    except nc.ModelFileError:
        return
    assert isinstance(model, nc.Sequential)  # a mutation that left the file valid
