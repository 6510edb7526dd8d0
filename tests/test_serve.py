"""numcnn serve: the HTTP API through Starlette's test client, and the command line.

A tiny model built here (no runs/ folder needed) has every layer kind the page explains: a
Normalize, a padded conv, max pooling, a strided grouped conv, average pooling without
counting the padding, and a Linear head.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

pytest.importorskip("starlette", reason="numcnn serve needs the serve extra: pip install 'numcnn[serve]'")
pytest.importorskip("PIL", reason="reading images needs Pillow (the train extra)")

from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import numcnn  # noqa: E402
from numcnn import cli  # noqa: E402
from numcnn.errors import ConfigError  # noqa: E402
from numcnn.data import read_image  # noqa: E402
from numcnn.functional import im2col  # noqa: E402
from numcnn.layers import (AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, Normalize, ReLU,  # noqa: E402
                           Tanh)
from numcnn.model import Sequential, save  # noqa: E402
from numcnn.serve import app as serve_app  # noqa: E402
from numcnn.serve.app import MAX_BODY_BYTES, create_app  # noqa: E402
from numcnn.serve.explain import Explainer  # noqa: E402
from numcnn.train import predict_proba  # noqa: E402
from reference import avg_pool2d_ref, conv2d_ref, max_pool2d_ref  # noqa: E402

CLASSES = ["ring", "bar", "dot"]


def tiny_model(dtype=np.float32, act=ReLU) -> Sequential:
    """1 x 12 x 12 -> 3 classes, through every layer kind the page explains."""
    numcnn.manual_seed(0)
    model = Sequential(
        Normalize([0.5], [0.25], dtype=dtype),
        Conv2d(1, 4, 3, padding=1, dtype=dtype), act(), MaxPool2d(2),          # 4 x 6 x 6
        Conv2d(4, 6, 3, stride=2, padding=1, groups=2, dtype=dtype), act(),    # 6 x 3 x 3
        AvgPool2d(3, stride=1, padding=1, count_include_pad=False),            # 6 x 3 x 3
        Flatten(), Linear(54, 3, dtype=dtype),
        input_shape=(1, 12, 12))
    rng = np.random.default_rng(0)
    for _, layer, key in model.named_parameters():  # biases start at zero; make them count
        if key == "bias":
            layer.params[key] = rng.normal(0, 0.3, layer.params[key].shape).astype(dtype)
    return model


def tiny_model_file(folder, dtype=np.float32, act=ReLU) -> str:
    path = str(folder / "tiny.npz")
    save(tiny_model(dtype, act), path, {"training": {"classes": CLASSES, "dark_background": True}})
    return path


def png(array: np.ndarray) -> bytes:
    """uint8 (H, W) or (H, W, 3) pixels as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def drawing(seed: int = 0, size: int = 20) -> bytes:
    """A light stroke on a dark ground, different for every seed."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((size, size), np.uint8)
    row, col = rng.integers(2, size - 6, 2)
    pixels[row:row + 4, col:col + rng.integers(2, 6)] = 255
    return png(np.maximum(pixels, rng.integers(0, 40, (size, size)).astype(np.uint8)))


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height: what a decompression bomb looks like to Pillow."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


NOISE_PNG = png(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))  # incompressible


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_model_file(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def client(model_path):
    with TestClient(create_app(Explainer.from_path(model_path))) as test_client:
        yield test_client


def layer_inputs(model, x):
    """The input of every top-level layer for x (1, C, H, W), and the logits."""
    inputs = []
    with model.evaluating():
        for layer in model.layers:
            inputs.append(x)
            x = layer.forward(x)
    return inputs, x


def f32(enc) -> np.ndarray:
    import base64
    return np.frombuffer(base64.b64decode(enc["data"]), dtype="<f4").reshape(enc["shape"])


# -- the model ---------------------------------------------------------------------------------
def test_model_describes_architecture_classes_and_normalisation(client):
    answer = client.get("/api/model").json()
    assert answer["input_shape"] == [1, 12, 12]
    assert answer["classes"] == CLASSES
    assert answer["normalization"] == {"mean": [0.5], "std": [0.25]}
    assert answer["dark_background"] is True
    layers = answer["layers"]
    assert [layer["type"] for layer in layers] == ["Normalize", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU",
                                                   "AvgPool2d", "Flatten", "Linear"]
    assert [layer["output_shape"] for layer in layers][:5] == [[1, 12, 12], [4, 12, 12], [4, 12, 12], [4, 6, 6],
                                                               [6, 3, 3]]
    assert layers[-1]["output_shape"] == [3]
    assert [layer["detail"] for layer in layers] == ["normalize", "conv", "activation", "pool", "conv", "activation",
                                                     "pool", None, None]
    assert [layer["path"] for layer in layers] == [str(i) for i in range(9)]
    assert [layer["input_path"] for layer in layers] == [None] + [str(i) for i in range(8)]
    assert layers[4]["description"] == "Conv2d 6@3x3, stride 2, padding 1, groups 2"
    assert answer["parameters"] == tiny_model().num_params()


def test_the_page_and_its_assets_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "/static/style.css" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    for asset in ("app.js", "style.css"):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and len(response.content) > 1000
        assert "https://" not in response.text


# -- predict -----------------------------------------------------------------------------------
def test_predict_gives_every_class_sorted_as_numcnn_predict_does(client, model_path, tmp_path):
    body = drawing(3)
    answer = client.post("/api/predict", content=body, headers={"Content-Type": "image/png"})
    assert answer.status_code == 200
    predictions = answer.json()["predictions"]
    assert sorted(p["index"] for p in predictions) == [0, 1, 2]
    probs = [p["probability"] for p in predictions]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-6
    assert all(p["class"] == CLASSES[p["index"]] for p in predictions)
    # The same picture as a file, through the code `numcnn predict` uses.
    (tmp_path / "x.png").write_bytes(body)
    x, _ = read_image(tmp_path / "x.png", (1, 12, 12), dark_background=True)
    expected = predict_proba(numcnn.load(model_path), x[None])[0]
    assert np.allclose([expected[p["index"]] for p in predictions], probs, atol=1e-6)


def test_a_light_background_is_inverted_for_a_model_trained_on_dark(client):
    ink = np.full((16, 16), 255, np.uint8)
    ink[4:12, 6:10] = 0  # dark stroke on paper
    answer = client.post("/api/explain", content=png(ink)).json()
    assert answer["inverted"] is True
    seen = f32(answer["input"])
    assert seen.shape == (1, 12, 12) and seen[0, 0, 0] < 0.1 and seen.max() > 0.9


def test_colour_photos_are_taken_by_a_gray_model(client):
    rgb = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert client.post("/api/predict", content=png(rgb)).status_code == 200


# -- explain -----------------------------------------------------------------------------------
def test_explain_gives_every_layer_output_as_numcnn_computes_it(client, model_path):
    body = drawing(5)
    answer = client.post("/api/explain", content=body).json()
    x = f32(answer["input"])
    model = numcnn.load(model_path)
    inputs, logits = layer_inputs(model, x[None])
    outputs = inputs[1:] + [logits]
    assert len(answer["layers"]) == len(outputs)
    for entry, expected in zip(answer["layers"], outputs):
        got = f32(entry["output"])
        assert got.shape == expected.shape[1:]
        np.testing.assert_array_equal(got, expected[0])
        assert entry["output"]["min"] == pytest.approx(float(expected.min()))
    np.testing.assert_allclose(answer["logits"], logits[0], rtol=1e-6)
    exp = np.exp(logits[0] - logits[0].max())
    np.testing.assert_allclose(answer["probabilities"], exp / exp.sum(), rtol=1e-5)
    assert answer["top"] == int(np.argmax(logits[0])) == answer["predictions"][0]["index"]


def test_saliency_is_the_gradient_of_the_top_logit(tmp_path):
    # A smooth float64 model (tanh, no max pool): central differences are then exact to ~1e-8.
    explainer = Explainer.from_path(tiny_model_file(tmp_path, np.float64, Tanh))
    x, _ = explainer.read(drawing(7))
    answer = explainer.explain(x)
    saliency = f32(answer["saliency"]).astype(np.float64)
    model = explainer.model
    top = answer["top"]

    def top_logit(image):
        with model.evaluating():
            return model.forward(image[None].astype(np.float64))[0, top]

    rng = np.random.default_rng(0)
    for _ in range(12):
        pixel = (0, *rng.integers(0, 12, 2))
        step = np.zeros_like(x, dtype=np.float64)
        step[pixel] = 1e-5
        numeric = (top_logit(x + step) - top_logit(x - step)) / 2e-5
        assert saliency[pixel] == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    other = [k for k in range(3) if k != top][0]  # it is the top class's gradient, not another's
    with model.evaluating():
        model.forward(x[None].astype(np.float64))
        dout = np.zeros((1, 3))
        dout[0, other] = 1
        assert not np.allclose(model.backward(dout)[0], saliency, atol=1e-6)


# -- the detail of one output pixel --------------------------------------------------------------
def detail(client, body, layer, channel, y, x):
    return client.post(f"/api/detail?layer={layer}&channel={channel}&y={y}&x={x}", content=body)


@pytest.mark.parametrize("layer, channel, y, x", [(1, 2, 0, 11), (1, 0, 5, 6), (4, 5, 0, 1), (4, 1, 2, 2)])
def test_conv_detail_sums_to_the_map_value(client, model_path, layer, channel, y, x):
    body = drawing(11)
    answer = detail(client, body, layer, channel, y, x)
    assert answer.status_code == 200
    d = answer.json()
    model = numcnn.load(model_path)
    image = f32(client.post("/api/explain", content=body).json()["input"])
    inputs, _ = layer_inputs(model, image[None])
    conv = model.layers[layer]
    layer_input = inputs[layer].astype(np.float64)
    # The definition, written as loops (tests/reference.py), gives the same map value.
    expected = conv2d_ref(layer_input, conv.params["weight"], conv.params["bias"], conv.stride, conv.padding,
                          conv.dilation, conv.groups)[0, channel, y, x]
    assert d["value"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert d["sum"] == pytest.approx(d["value"], rel=1e-5, abs=1e-6)
    assert d["sum"] == pytest.approx(sum(d["channel_sums"]) + d["bias"], abs=1e-12)
    assert d["bias"] == pytest.approx(float(conv.params["bias"][channel]))
    np.testing.assert_allclose(d["weights"], conv.params["weight"][channel], rtol=1e-6)
    np.testing.assert_allclose(np.array(d["products"]), np.array(d["patch"]) * np.array(d["weights"]), rtol=1e-12)
    # Grouped conv: output channel 5 of 6 (groups 2) reads input channels 2 and 3 only.
    in_per_group = conv.in_channels // conv.groups
    group = channel // (conv.out_channels // conv.groups)
    assert d["input_channels"] == list(range(group * in_per_group, (group + 1) * in_per_group))
    # The im2col row is numcnn's, and its dot product with the kernel gives the value too.
    col = im2col(inputs[layer], conv.kernel_size, conv.stride, conv.padding)
    out_width = inputs[layer + 1].shape[3]
    row = y * out_width + x
    assert d["im2col"]["row"] == row and d["im2col"]["shape"] == list(col.shape)
    np.testing.assert_allclose(d["im2col"]["values"], col[row], rtol=1e-6)
    assert d["im2col"]["dot"] == pytest.approx(d["value"], rel=1e-5, abs=1e-6)


def test_conv_detail_marks_padding_and_stride(client):
    # Layer 4: 3x3, stride 2, padding 1 on a 6x6 input; output pixel (0, 1) reads rows -1..1 and
    # columns 1..3, so its top row is padding.
    d = detail(client, drawing(2), 4, 0, 0, 1).json()
    window = d["window"]
    assert window["rows"] == [-1, 0, 1] and window["cols"] == [1, 2, 3]
    assert window["stride"] == [2, 2] and window["pads"] == [1, 1, 1, 1]
    assert window["padding"] == [[True] * 3, [False] * 3, [False] * 3]
    assert all(v == 0 for v in np.array(d["patch"])[:, 0].ravel())  # zero padding enters the sum as 0


def test_max_pool_detail_names_the_winner(client, model_path):
    body = drawing(4)
    d = detail(client, body, 3, 1, 2, 3).json()
    image = f32(client.post("/api/explain", content=body).json()["input"])
    inputs, _ = layer_inputs(numcnn.load(model_path), image[None])
    window = inputs[3][0, 1, 4:6, 6:8]
    assert d["mode"] == "max" and d["window"]["rows"] == [4, 5] and d["window"]["cols"] == [6, 7]
    np.testing.assert_array_equal(d["values"], window)
    assert d["winner"] == list(np.unravel_index(np.argmax(window), window.shape))
    assert d["result"] == d["value"] == pytest.approx(max_pool2d_ref(inputs[3], 2)[0, 1, 2, 3])


def test_avg_pool_detail_divides_by_the_real_pixels(client, model_path):
    body = drawing(6)
    d = detail(client, body, 6, 3, 0, 0).json()  # a corner: 4 real pixels, 5 of padding
    image = f32(client.post("/api/explain", content=body).json()["input"])
    inputs, _ = layer_inputs(numcnn.load(model_path), image[None])
    assert d["mode"] == "avg" and d["divisor"] == 4
    assert d["sum"] == pytest.approx(float(inputs[6][0, 3, :2, :2].astype(np.float64).sum()), rel=1e-6)
    expected = avg_pool2d_ref(inputs[6], 3, 1, 1, count_include_pad=False)[0, 3, 0, 0]
    assert d["result"] == pytest.approx(d["value"], rel=1e-6) and d["value"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("query, message", [
    ("layer=7&channel=0&y=0&x=0", "Flatten"),
    ("layer=9&channel=0&y=0&x=0", "layer must be"),
    ("layer=1.0&channel=0&y=0&x=0", "layer must be"),
    ("channel=0&y=0&x=0", "layer is required"),
    ("layer=1&channel=4&y=0&x=0", "channel must be from 0 to 3"),
    ("layer=1&channel=0&y=12&x=0", "y must be from 0 to 11"),
    ("layer=1&channel=0&y=0", "x must be an integer"),
])
def test_detail_of_a_bad_pixel_is_a_400(client, query, message):
    answer = client.post(f"/api/detail?{query}", content=drawing(0))
    assert answer.status_code == 400 and message in answer.json()["error"]


# -- bad input never crashes the server ----------------------------------------------------------
@pytest.mark.parametrize("body, message", [
    (b"", "empty"),
    (b"this is not an image", "not an image"),
    (NOISE_PNG[:len(NOISE_PNG) // 2], "truncated"),
    (b"GIF89a" + bytes(20), ""),
])
@pytest.mark.parametrize("route", ["/api/predict", "/api/explain", "/api/detail?layer=1&channel=0&y=0&x=0"])
def test_unreadable_bodies_are_400_with_a_json_error(client, route, body, message):
    answer = client.post(route, content=body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_a_body_over_10_mb_is_413_by_its_declared_length(client):
    answer = client.post("/api/predict", content=b"\0" * (MAX_BODY_BYTES + 1))
    assert answer.status_code == 413 and "limit" in answer.json()["error"]
    assert client.post("/api/predict", content=drawing(0)).status_code == 200  # still serving


def test_a_body_over_10_mb_without_a_length_is_cut_off(client):
    sent = []

    def chunks():  # chunked transfer: no Content-Length to check first
        for _ in range(12):
            sent.append(1)
            yield b"\0" * 2**20

    answer = client.post("/api/explain", content=chunks())
    assert answer.status_code == 413
    assert "more than" in answer.json()["error"]


@pytest.mark.parametrize("route, method", [("/api/predict", "GET"), ("/api/explain", "PUT"),
                                           ("/api/model", "POST"), ("/api/detail", "GET")])
def test_a_wrong_method_is_405_with_a_json_error(client, route, method):
    answer = client.request(method, route)
    assert answer.status_code == 405 and answer.json()["error"].startswith(f"{method} is not allowed on {route}")


def test_an_unknown_path_is_404_json(client):
    answer = client.get("/api/nothing")
    assert answer.status_code == 404 and "no such route: /api/nothing" in answer.json()["error"]


@pytest.mark.parametrize("factor", [1.5, 3])  # Pillow warns between 1x and 2x its limit, refuses above
def test_a_decompression_bomb_is_refused_before_decoding(client, monkeypatch, factor):
    side = int((Image.MAX_IMAGE_PIXELS * factor) ** 0.5) + 1
    decoded = []
    monkeypatch.setattr("numcnn.serve.explain.read_image", lambda *a, **k: decoded.append(1))
    with pytest.warns(Image.DecompressionBombWarning) if factor < 2 else _nothing():
        answer = client.post("/api/predict", content=header_only_png(side, side))
    assert answer.status_code == 413 and "too large" in answer.json()["error"]
    assert decoded == []


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_body_limit_is_ten_mebibytes():
    assert serve_app.MAX_BODY_BYTES == 10 * 2**20


# -- one model, many threads -------------------------------------------------------------------
def test_concurrent_requests_each_get_their_own_answer(model_path):
    from concurrent.futures import ThreadPoolExecutor

    explainer = Explainer.from_path(model_path)
    bodies = [drawing(seed) for seed in range(24)]
    serial = [explainer.explain(explainer.read(b)[0]) for b in bodies]
    with TestClient(create_app(explainer)) as test_client:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda b: test_client.post("/api/explain", content=b).json(), bodies * 2))
    for answer, expected in zip(answers, serial * 2):
        assert [p["index"] for p in answer["predictions"]] == [p["index"] for p in expected["predictions"]]
        assert [p["probability"] for p in answer["predictions"]] == pytest.approx(
            [p["probability"] for p in expected["predictions"]], abs=1e-6)
        # The saliency runs backward through the layers' caches: another request's forward
        # in between would leave someone else's activations there.
        np.testing.assert_allclose(f32(answer["saliency"]), f32(expected["saliency"]), rtol=1e-5, atol=1e-7)


# -- the command line --------------------------------------------------------------------------
def test_a_model_without_an_image_input_is_refused(tmp_path):
    from numcnn.errors import ConfigError

    path = tmp_path / "mlp.npz"
    save(Sequential(Linear(4, 2), input_shape=(4,)), str(path))
    with pytest.raises(ConfigError, match=r"input shape \(C, H, W\)"):
        Explainer.from_path(path)


def test_serve_without_the_extra_is_one_error_line_before_any_work(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    status = cli.main(["serve", str(tmp_path / "no-such-model.npz")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "pip install 'numcnn[serve]'" in err and "no-such-model" not in err  # the model was not read


def test_serve_with_a_missing_model_is_one_error_line(capsys, tmp_path):
    status = cli.main(["serve", str(tmp_path / "no-such-model.npz"), "--port", "0"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1 and "no-such-model" in err


def test_serve_prints_its_url_answers_and_stops_cleanly_on_ctrl_c(model_path):
    import json
    import urllib.request

    process = subprocess.Popen([sys.executable, "-m", "numcnn", "serve", model_path, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = process.stdout.readline()
        assert first.startswith(f"serving {model_path}") and " at http://127.0.0.1:" in first
        url = first.rsplit(" at ", 1)[1].strip()
        with urllib.request.urlopen(url + "api/model", timeout=60) as response:
            assert json.load(response)["classes"] == CLASSES
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Traceback" not in err and out.strip().endswith("stopped")


def test_serve_on_a_port_in_use_is_one_error_line(model_path, capsys):
    from numcnn.serve import bind

    taken = bind("127.0.0.1", 0)
    try:
        status = cli.main(["serve", model_path, "--port", str(taken.getsockname()[1])])
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: cannot listen on 127.0.0.1:") and err.count("\n") == 1


# -- a real server on loopback (the browser and load tests use it) --------------------------------
class LiveServer:
    """uvicorn serving the app on 127.0.0.1 and a free port, in a thread; ``url`` ends in "/"."""

    def __init__(self, model_path, examples=None):
        import threading
        import time

        import uvicorn

        from numcnn.serve import bind, url_of

        self.explainer = Explainer.from_path(model_path, examples=examples)
        self.socket = bind("127.0.0.1", 0)
        self.url = url_of(self.socket)
        config = uvicorn.Config(create_app(self.explainer), log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()

    def post(self, route: str, body: bytes) -> tuple[int, dict]:
        return post(self.url, route, body)


def post(url: str, route: str, body: bytes) -> tuple[int, dict]:
    """POST image bytes to url + route over a fresh connection: (status, JSON answer)."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url + route.lstrip("/"), data=body, method="POST",
                                     headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.mark.parametrize("name, shape", [("simple-convnet", (1, 28, 28)), ("lenet5", (1, 28, 28)),
                                         ("deep-convnet", (1, 28, 28)), ("mlp", (1, 28, 28)),
                                         ("fashion-net", (1, 28, 28)), ("cifar-resnet", (3, 32, 32))])
def test_every_zoo_model_is_explained(tmp_path, name, shape):
    from numcnn import zoo

    numcnn.manual_seed(1)
    model = zoo.model_for(name, shape, 10)
    path = save(model, str(tmp_path / "m.npz"))
    explainer = Explainer.from_path(path)
    rgb = np.random.default_rng(2).integers(0, 256, (40, 36, 3), dtype=np.uint8)
    x, _ = explainer.read(png(rgb))
    answer = explainer.explain(x)
    assert f32(answer["saliency"]).shape == shape
    assert len(answer["predictions"]) == 10
    explained = 0
    for layer in every_layer(explainer.describe()["layers"]):  # inside the blocks too
        if layer["detail"]:
            shape = layer["output_shape"]
            c, h, w = shape if len(shape) == 3 else (1, 1, shape[0])
            d = explainer.detail(x, layer["path"], c - 1, h - 1, w // 2)
            assert d["value"] == pytest.approx(shown(d), rel=1e-4, abs=1e-5), layer["path"]
            explained += 1
    assert explained > 0


def every_layer(layers):
    """The entries of /api/model's layers, depth first, a block before the layers inside it."""
    for layer in layers:
        yield layer
        yield from every_layer(layer.get("children", []))


def shown(d) -> float:
    """The number a detail works out, which the page compares with the map's value."""
    return d["sum"] if d["kind"] in ("conv", "conv_transpose", "residual") else d["result"]


def test_serve_without_pillow_is_one_error_line_before_the_model_is_read(monkeypatch, capsys, tmp_path):
    """Every request decodes an image: a missing Pillow is said at start, not by every request."""
    from numcnn import serve

    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL raises ImportError
    with pytest.raises(ConfigError, match=r"needs Pillow, which is not installed: pip install 'numcnn\[serve\]'"):
        serve.require()
    assert cli.main(["serve", str(tmp_path / "no-such-model.npz"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Pillow" in err[0]


def test_an_unforeseen_failure_is_a_json_500_and_the_server_goes_on(monkeypatch, tmp_path):
    explainer = Explainer(tiny_model())
    client = TestClient(create_app(explainer), raise_server_exceptions=False)
    body = png(np.zeros((28, 28), np.uint8))
    monkeypatch.setattr(explainer, "predict", lambda x: 1 / 0)
    answer = client.post("/api/predict", content=body, headers={"content-type": "image/png"})
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error: ZeroDivisionError: division by zero"}
    monkeypatch.undo()
    assert client.post("/api/predict", content=body, headers={"content-type": "image/png"}).status_code == 200


def test_pictures_are_capped_at_fifty_megapixels_below_pillows_own_limit(client, monkeypatch):
    from numcnn.serve.payload import MAX_PIXELS, check_image_size

    assert MAX_PIXELS < Image.MAX_IMAGE_PIXELS
    decoded = []
    monkeypatch.setattr("numcnn.serve.explain.read_image", lambda *a, **k: decoded.append(1) or (None, False))
    answer = client.post("/api/predict", content=header_only_png(7100, 7100))  # 50.4 megapixels
    assert answer.status_code == 413 and "more than the limit of 50,000,000" in answer.json()["error"]
    assert decoded == []
    assert check_image_size(header_only_png(8000, 6000)) == (8000, 6000)  # a 48-megapixel photo


# -- the page opens on examples --------------------------------------------------------------------
def sample_model_file(folder) -> str:
    """An (untrained) SimpleConvNet whose record says it was trained on the bundled sample."""
    import numcnn as nc

    nc.manual_seed(0)
    path = str(folder / "sample-model.npz")
    save(nc.zoo.simple_convnet(), path, {"training": {"model": "simple-convnet", "dataset": "sample"}})
    return path


def test_examples_are_one_test_image_per_class_of_the_runs_dataset(tmp_path):
    import numcnn as nc

    explainer = Explainer.from_path(sample_model_file(tmp_path))
    shown = explainer.example_images()
    _, (x, y) = nc.data.load("sample", dtype=None)
    assert [e["label"] for e in shown] == list(range(10))
    for e in shown:
        first = int(np.flatnonzero(y == e["label"])[0])  # the test set's first image of that class
        decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(e["png"]))))
        assert np.array_equal(decoded, x[first, 0])
        assert e["name"] == nc.data.class_names("sample")[e["label"]]


def test_a_model_without_a_dataset_has_no_examples_and_given_ones_win(tmp_path):
    assert Explainer.from_path(tiny_model_file(tmp_path)).example_images() == []
    x = np.zeros((2, 1, 28, 28), np.uint8)
    x[1] = 200
    given = Explainer.from_path(sample_model_file(tmp_path), examples=(x, np.array([3, 7])))
    assert [e["label"] for e in given.example_images()] == [3, 7]


def test_the_examples_route(tmp_path):
    from starlette.testclient import TestClient

    with TestClient(create_app(Explainer.from_path(sample_model_file(tmp_path)))) as client:
        answer = client.get("/api/examples")
    assert answer.status_code == 200 and len(answer.json()["examples"]) == 10
