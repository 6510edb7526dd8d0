"""numcnn serve opens every block: the layers inside a Residual and a nested Sequential are listed
by path and explained like top-level ones, and every number shown is numcnn's own.

The expectations here are computed apart from the page's code: each layer's input by running
the model's own layers (``output_of``), batch norm by the formula on the layer's running
statistics, convolutions by the nested loops of tests/reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette", reason="numcnn serve needs the serve extra: pip install 'numcnn[serve]'")
pytest.importorskip("PIL", reason="reading images needs Pillow (the train extra)")

from starlette.testclient import TestClient  # noqa: E402

import numcnn  # noqa: E402
from numcnn.functional import im2col  # noqa: E402
from numcnn.layers import (BatchNorm, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, LeakyReLU, Linear,  # noqa: E402
                           MaxPool2d, ReLU, Tanh)
from numcnn.model import Residual, Sequential  # noqa: E402
from numcnn.serve.app import create_app  # noqa: E402
from numcnn.serve.explain import Explainer  # noqa: E402
from reference import conv2d_ref  # noqa: E402
from test_serve import drawing, every_layer, f32, shown  # noqa: E402

CLASSES = ["a", "b", "c"]


def block_model(dtype=np.float64) -> Sequential:
    """1 x 12 x 12 -> 3 classes through two residual blocks (one with a strided conv shortcut), a
    nested Sequential and a vector head; batch norms with running statistics of their own."""
    numcnn.manual_seed(0)
    model = Sequential(
        Conv2d(1, 4, 3, padding=1, dtype=dtype), BatchNorm2d(4, dtype=dtype), ReLU(),                    # 0-2
        Residual(Conv2d(4, 4, 3, padding=1, bias=False, dtype=dtype), BatchNorm2d(4, dtype=dtype), ReLU(),
                 Conv2d(4, 4, 3, padding=1, bias=False, dtype=dtype), BatchNorm2d(4, dtype=dtype)), ReLU(),  # 3-4
        Residual(Conv2d(4, 6, 3, stride=2, padding=1, bias=False, dtype=dtype), BatchNorm2d(6, dtype=dtype),
                 LeakyReLU(0.1), Conv2d(6, 6, 3, padding=2, dilation=2, dtype=dtype), BatchNorm2d(6, dtype=dtype),
                 shortcut=Sequential(Conv2d(4, 6, 1, stride=2, bias=False, dtype=dtype),
                                     BatchNorm2d(6, dtype=dtype))), ReLU(),                             # 5-6: 6x6
        MaxPool2d(2),                                                                                    # 7: 3x3
        Sequential(Conv2d(6, 8, 3, padding=1, dtype=dtype), Tanh()),                                     # 8
        GlobalAvgPool2d(), Flatten(), Linear(8, 5, dtype=dtype), ReLU(), Linear(5, 3, dtype=dtype),      # 9-13
        input_shape=(1, 12, 12))
    rng = np.random.default_rng(4)
    for _, layer in model.named_layers():
        if isinstance(layer, BatchNorm):  # as if trained: no statistic is 0 or 1
            n = layer.num_features
            layer.buffers["running_mean"] = rng.normal(0, 0.5, n).astype(dtype)
            layer.buffers["running_var"] = rng.uniform(0.3, 2.0, n).astype(dtype)
            layer.params["weight"] = rng.uniform(0.5, 1.5, n).astype(dtype)
            layer.params["bias"] = rng.normal(0, 0.3, n).astype(dtype)
            layer.buffers["num_batches_tracked"] = np.array(7, np.int64)
        elif "bias" in layer.params:
            layer.params["bias"] = rng.normal(0, 0.3, layer.params["bias"].shape).astype(dtype)
    return model.eval()


def layer_at(model, path: str):
    """The layer at a dotted path, found by the model's own names."""
    return dict(model.named_layers())[path]


def output_of(model, path: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input, output) of the layer at path for x (N, C, H, W), by the model's own layers: every
    layer before it in each container on the way, applied in turn."""
    parts = path.split(".")
    container, prefix = model, []
    while True:
        name = parts[len(prefix)]
        if name == "shortcut":
            layer = container.shortcut
        else:
            for earlier in container.layers[:int(name)]:
                x = earlier.forward(x)
            layer = container.layers[int(name)]
        prefix.append(name)
        if len(prefix) == len(parts):
            return x, layer.forward(x)
        container = layer


@pytest.fixture(scope="module")
def explainer():
    return Explainer(block_model(), {"classes": CLASSES})


@pytest.fixture(scope="module")
def image(explainer):
    return explainer.read(drawing(8, size=12))[0].astype(np.float64)


def test_every_layer_inside_the_blocks_is_listed_by_its_state_dict_name(explainer):
    layers = list(every_layer(explainer.describe()["layers"]))
    paths = [layer["path"] for layer in layers]
    assert paths == [name for name, _ in block_model().named_layers() if name]  # the model's own names, in order
    assert "3.4" in paths and "5.shortcut.1" in paths and "8.1" in paths
    by_path = {layer["path"]: layer for layer in layers}
    # Each layer says what it reads: the layer before it, or for a block's first layer and its
    # shortcut, what the block reads.
    assert [by_path[p]["input_path"] for p in ("3", "3.0", "3.1", "4", "5.0", "5.shortcut", "5.shortcut.0",
                                               "5.shortcut.1", "6", "8.0", "8.1", "9")] == \
        ["2", "2", "3.0", "3", "4", "4", "4", "5.shortcut.0", "5", "7", "8.0", "8"]
    assert by_path["5.shortcut"]["branch"] == "shortcut" and by_path["5.2"]["branch"] == "body"
    assert by_path["5.2"]["description"] == "LeakyReLU, slope 0.1"
    assert by_path["5"]["description"] == "Residual x + f(x): 5 layers inside, shortcut Sequential"
    assert by_path["3"]["description"] == "Residual x + f(x): 5 layers inside, identity shortcut"
    assert [by_path[p]["detail"] for p in ("3", "3.0", "3.1", "3.2", "5.shortcut", "8.1", "9", "12")] == \
        ["residual", "conv", "batch_norm", "activation", None, "activation", "pool", "activation"]
    assert by_path["5.0"]["output_shape"] == [6, 6, 6] and by_path["12"]["output_shape"] == [5]


def test_explain_gives_every_inner_layers_output(explainer, image):
    answer = explainer.explain(image.astype(np.float32))
    entries = {entry["path"]: entry for entry in every_layer(answer["layers"])}
    assert set(entries) == set(explainer.by_path)
    model = block_model()
    for path, entry in entries.items():
        _, expected = output_of(model, path, image[None])
        np.testing.assert_allclose(f32(entry["output"]), expected[0], rtol=1e-5, atol=1e-6, err_msg=path)


@pytest.mark.parametrize("path, channel, y, x", [("3.1", 2, 0, 5), ("3.4", 3, 7, 11), ("5.1", 5, 5, 0),
                                                 ("5.shortcut.1", 1, 2, 3), ("1", 0, 11, 11)])
def test_batch_norm_detail_is_the_formula_on_the_running_statistics(explainer, image, path, channel, y, x):
    d = explainer.detail(image.astype(np.float32), path, channel, y, x)
    model = block_model()
    bn = layer_at(model, path)
    layer_input, output = output_of(model, path, image[None])
    mean, var = bn.buffers["running_mean"][channel], bn.buffers["running_var"][channel]
    gamma, beta = bn.params["weight"][channel], bn.params["bias"][channel]
    pixel = layer_input[0, channel, y, x]
    assert (d["input"], d["running_mean"], d["running_var"], d["eps"], d["gamma"], d["beta"]) == pytest.approx(
        (pixel, mean, var, 1e-5, gamma, beta), rel=1e-6)
    assert d["std"] == pytest.approx(np.sqrt(var + 1e-5), rel=1e-12)
    assert d["normalized"] == pytest.approx((pixel - mean) / np.sqrt(var + 1e-5), rel=1e-6)
    assert d["result"] == pytest.approx((pixel - mean) / np.sqrt(var + 1e-5) * gamma + beta, rel=1e-6)
    assert d["value"] == pytest.approx(output[0, channel, y, x], rel=1e-6) == d["result"]
    assert d["batches_tracked"] == 7


@pytest.mark.parametrize("path, channel, y, x", [("3.0", 1, 4, 9), ("5.0", 4, 0, 5), ("5.3", 2, 3, 3),
                                                 ("5.shortcut.0", 0, 5, 2), ("8.0", 7, 1, 2)])
def test_conv_detail_inside_a_block_is_the_convolution(explainer, image, path, channel, y, x):
    d = explainer.detail(image.astype(np.float32), path, channel, y, x)
    model = block_model()
    conv = layer_at(model, path)
    layer_input, _ = output_of(model, path, image[None])
    expected = conv2d_ref(layer_input, conv.params["weight"], conv.params.get("bias"), conv.stride, conv.padding,
                          conv.dilation)[0, channel, y, x]
    assert d["value"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert d["sum"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(d["weights"], conv.params["weight"][channel], rtol=1e-6)
    assert d["bias"] == (float(conv.params["bias"][channel]) if "bias" in conv.params else 0.0)
    col = im2col(layer_input, conv.kernel_size, conv.stride, conv.padding, conv.dilation)
    np.testing.assert_allclose(d["im2col"]["values"], col[d["im2col"]["row"]], rtol=1e-6)
    assert d["input_shape"] == list(layer_input.shape[1:])


@pytest.mark.parametrize("path, channel, y, x, function", [
    ("3.2", 0, 3, 3, lambda v: max(v, 0.0)), ("5.2", 3, 1, 4, lambda v: v if v > 0 else 0.1 * v),
    ("8.1", 6, 2, 0, np.tanh), ("12", 0, 0, 3, lambda v: max(v, 0.0)), ("4", 2, 8, 1, lambda v: max(v, 0.0))])
def test_activation_detail_applies_its_formula(explainer, image, path, channel, y, x, function):
    d = explainer.detail(image.astype(np.float32), path, channel, y, x)
    layer_input, output = output_of(block_model(), path, image[None])
    where = (0, channel, y, x) if layer_input.ndim == 4 else (0, x)  # a vector: x is the feature
    assert d["input"] == pytest.approx(layer_input[where], rel=1e-6)
    assert d["result"] == pytest.approx(function(layer_input[where]), rel=1e-6, abs=1e-12)
    assert d["value"] == pytest.approx(output[where], rel=1e-6, abs=1e-7)


def test_some_activation_inputs_are_negative_so_the_relu_detail_can_show_a_zero(explainer, image):
    _, output = output_of(block_model(), "3.1", image[None])
    assert (output < 0).any() and (output > 0).any()


@pytest.mark.parametrize("path, channel, y, x", [("3", 1, 6, 2), ("3", 3, 0, 0), ("5", 5, 4, 1), ("5", 0, 0, 5)])
def test_residual_detail_adds_both_branches(explainer, image, path, channel, y, x):
    d = explainer.detail(image.astype(np.float32), path, channel, y, x)
    model = block_model()
    block = layer_at(model, path)
    block_input, output = output_of(model, path, image[None])
    body = block_input
    for layer in block.layers:
        body = layer.forward(body)
    skip = block_input if block.shortcut is None else block.shortcut.forward(block_input)
    assert d["body"]["value"] == pytest.approx(body[0, channel, y, x], rel=1e-6, abs=1e-7)
    assert d["skip"]["value"] == pytest.approx(skip[0, channel, y, x], rel=1e-6, abs=1e-7)
    assert d["sum"] == pytest.approx(d["body"]["value"] + d["skip"]["value"], rel=1e-12)
    assert d["value"] == pytest.approx(output[0, channel, y, x], rel=1e-6, abs=1e-7)
    assert d["sum"] == pytest.approx(d["value"], rel=1e-5, abs=1e-6)
    assert d["body"]["path"] == f"{path}.4"
    if block.shortcut is None:
        assert d["skip"] == {**d["skip"], "path": "2", "identity": True} and "shortcut_conv" not in d
    else:  # the shortcut's own 1x1 strided conv at the same pixel, before its batch norm
        conv = block.shortcut.layers[0]
        expected = conv2d_ref(block_input, conv.params["weight"], None, conv.stride)[0, channel, y, x]
        assert d["skip"]["path"] == "5.shortcut" and d["skip"]["identity"] is False
        assert d["shortcut_conv"]["path"] == "5.shortcut.0"
        assert d["shortcut_conv"]["sum"] == pytest.approx(expected, rel=1e-6)
        assert d["shortcut_conv"]["value"] == pytest.approx(expected, rel=1e-5)
        assert d["shortcut_conv"]["window"]["rows"] == [2 * y] and d["shortcut_conv"]["window"]["cols"] == [2 * x]


def test_the_routes_take_a_layers_path(explainer):
    with TestClient(create_app(explainer)) as client:
        answer = client.post("/api/detail?layer=5.shortcut.1&channel=2&y=1&x=1", content=drawing(8, size=12))
        assert answer.status_code == 200 and answer.json()["kind"] == "batch_norm"
        assert answer.json()["path"] == "5.shortcut.1"
        for query, message in (("layer=5.9&channel=0&y=0&x=0", "layer must be"),
                               ("layer=5.shortcut&channel=0&y=0&x=0", "Sequential"),
                               ("layer=12&channel=1&y=0&x=0", "channel must be from 0 to 0"),
                               ("layer=12&channel=0&y=0&x=5", "x must be from 0 to 4")):
            answer = client.post(f"/api/detail?{query}", content=drawing(8, size=12))
            assert answer.status_code == 400 and message in answer.json()["error"], query


def test_every_detail_of_a_pretrained_net_equals_its_map():
    """fashion-net as shipped: every layer with a detail, inside its blocks too, at one pixel."""
    from numcnn import pretrained
    from numcnn.model import read_model

    model, training = read_model(pretrained.model_path("fashion-net"))
    explainer = Explainer(model, training)
    x, _ = pretrained.examples("fashion-net")
    image = x[2].astype(np.float32) / 255
    checked = []
    for layer in every_layer(explainer.describe()["layers"]):
        if layer["detail"]:
            shape = layer["output_shape"]
            c, h, w = shape if len(shape) == 3 else (1, 1, shape[0])
            d = explainer.detail(image, layer["path"], c // 2, h // 2, w // 3)
            assert d["value"] == pytest.approx(shown(d), rel=1e-4, abs=1e-5), layer["path"]
            checked.append(layer["path"])
    assert {"3.0", "3.1", "3.2", "3", "9.3", "9.4"} <= set(checked)
