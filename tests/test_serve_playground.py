"""The conv arithmetic playground of numcnn serve: the output size against the formula worked out
here, the output against the nested loops of tests/reference.py, and every impossible setting
explained in words (200, "valid": false), never a crash."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette", reason="numcnn serve needs the serve extra: pip install 'numcnn[serve]'")
pytest.importorskip("PIL", reason="reading images needs Pillow (the train extra)")

from starlette.testclient import TestClient  # noqa: E402

from numcnn.serve.app import create_app  # noqa: E402
from numcnn.serve.explain import Explainer  # noqa: E402
from numcnn.serve.playground import playground  # noqa: E402
from reference import conv2d_ref  # noqa: E402
from test_serve import drawing, f32  # noqa: E402
from test_serve_blocks import block_model, output_of  # noqa: E402


def formula(size, kernel, stride, padding, dilation) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    (3, 1, 0, 1), (3, 1, 1, 1), (5, 2, 2, 1), (3, 2, 1, 2), (4, 3, 0, 1), (1, 1, 0, 1), (2, 5, 1, 3), (7, 1, 6, 1),
    (10, 1, 0, 1), (3, 32, 0, 1)])
def test_the_output_is_numcnns_convolution_with_a_mean_kernel_and_has_the_formulas_size(kernel, stride, padding,
                                                                                       dilation):
    plane = np.random.default_rng(kernel * 7 + stride).random((12, 10)).astype(np.float32)
    answer = playground(plane, kernel, stride, padding, dilation)
    assert answer["valid"] and answer["problems"] == []
    out_h, out_w = formula(12, kernel, stride, padding, dilation), formula(10, kernel, stride, padding, dilation)
    assert answer["output"].shape == (out_h, out_w)
    assert answer["rows"]["out"] == out_h and answer["cols"]["out"] == out_w
    rows = answer["rows"]
    assert (rows["padded"], rows["effective_kernel"], rows["span"]) == (
        12 + 2 * padding, dilation * (kernel - 1) + 1, 12 + 2 * padding - dilation * (kernel - 1) - 1)
    assert rows["span"] // stride + 1 == out_h and rows["unread"] == rows["span"] % stride
    mean = np.full((1, 1, kernel, kernel), 1 / kernel**2)
    np.testing.assert_allclose(answer["output"], conv2d_ref(plane[None, None], mean, None, stride, padding,
                                                            dilation)[0, 0], rtol=1e-5, atol=1e-6)
    assert answer["starts"]["rows"] == [stride * i for i in range(out_h)]
    assert answer["taps"] == [dilation * j for j in range(kernel)]
    assert answer["weight"] == pytest.approx(1 / kernel**2)


@pytest.mark.parametrize("settings, message", [
    ((13, 1, 0, 1), "No window fits along the rows: the effective kernel D·(K−1)+1 = 13 is larger than the padded "
                    "input 12 + 2·0 = 12, so the output would have 0 rows."),
    ((5, 1, 0, 3), "effective kernel D·(K−1)+1 = 13"),
    ((3, 1, 3, 1), "The padding P = 3 is more than D·(K−1) = 2"),
    ((1, 1, 1, 1), "For this kernel, P can be at most 0."),
    ((0, 1, 0, 1), "the kernel size K must be at least 1; it is 0."),
    ((3, 0, 0, 1), "the stride S must be at least 1"),
    ((3, 1, -1, 1), "the padding P must be at least 0"),
    ((3, 1, 0, 0), "the dilation D must be at least 1"),
    ((33, 1, 0, 1), "the kernel size K goes up to 32 here; it is 33."),
    ((3, 1, 10**12, 1), "the padding P goes up to 32 here"),
])
def test_impossible_settings_are_explained(settings, message):
    answer = playground(np.zeros((12, 10), np.float32), *settings)
    assert answer["valid"] is False and answer["output"] is None
    assert any(message in problem for problem in answer["problems"]), answer["problems"]


def test_the_formula_is_worked_out_even_when_no_window_fits():
    answer = playground(np.zeros((12, 10), np.float32), 6, 2, 0, 2)  # effective kernel 11: rows fit, columns not
    assert answer["rows"]["out"] == formula(12, 6, 2, 0, 2) == 1
    assert answer["cols"]["out"] == formula(10, 6, 2, 0, 2) == 0
    assert len(answer["problems"]) == 1 and "columns" in answer["problems"][0]


def test_notes_say_what_the_floor_and_a_long_stride_leave_out():
    notes = playground(np.zeros((12, 12), np.float32), 2, 3, 0, 1)["notes"]
    assert any("the last 1 row(s) of the padded input are read by no window" in note for note in notes)
    assert any("1 row(s) between windows are never read" in note for note in notes)


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Explainer(block_model(), {"classes": ["a", "b", "c"]}))) as test_client:
        yield test_client


def test_the_route_convolves_the_image_or_a_layers_input(client):
    body = drawing(3, size=12)
    answer = client.post("/api/playground?kernel=3&stride=2&padding=1&dilation=1&channel=0", content=body)
    assert answer.status_code == 200
    got = answer.json()
    image = f32(client.post("/api/explain", content=body).json()["input"])[0]
    np.testing.assert_array_equal(f32(got["input"]), image)
    assert f32(got["output"]).shape == (6, 6) and got["source"]["layer"] is None
    # At a conv inside a block: that conv's input, channel 3.
    answer = client.post("/api/playground?kernel=3&stride=1&padding=1&dilation=1&channel=3&layer=3.3", content=body)
    layer_input, _ = output_of(block_model(), "3.3", image[None, None].astype(np.float64))
    np.testing.assert_allclose(f32(answer.json()["input"]), layer_input[0, 3], rtol=1e-5, atol=1e-6)
    assert answer.json()["source"] == {"layer": "3.3", "channel": 3,
                                       "description": "channel 3 of the input of layer 3.3"}


def test_the_route_explains_an_impossible_setting_and_refuses_a_malformed_query(client):
    body = drawing(3, size=12)
    answer = client.post("/api/playground?kernel=9&stride=1&padding=0&dilation=2&channel=0", content=body)
    assert answer.status_code == 200 and answer.json()["valid"] is False and answer.json()["output"] is None
    assert "No window fits" in answer.json()["problems"][0]
    for query, message in (("kernel=3.5&stride=1&padding=0&dilation=1&channel=0", "kernel must be an integer"),
                           ("kernel=3&stride=1&padding=0&dilation=1", "channel must be an integer"),
                           ("kernel=3&stride=1&padding=0&dilation=1&channel=1", "channel must be from 0 to 0"),
                           ("kernel=3&stride=1&padding=0&dilation=1&channel=0&layer=12", "not C x H x W maps"),
                           ("kernel=3&stride=1&padding=0&dilation=1&channel=0&layer=3.7", "layer must be")):
        answer = client.post(f"/api/playground?{query}", content=body)
        assert answer.status_code == 400 and message in answer.json()["error"], query
