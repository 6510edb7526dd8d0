"""The array-module seam: every kernel allocates through its input's module, so a CuPy array
would flow through unchanged.

No GPU is needed to check that: a stand-in module named "cupy" hands out arrays of its own
type, and NumPy's allocators are made to fail while the kernels run. A kernel that still
allocates with ``np.empty`` (and the like) fails here; one that asks ``get_array_module``
gets the stand-in and passes.
"""

import numpy as np
import pytest

from numcnn import functional as F
from numcnn.backend import get_array_module, is_array, to_numpy

from fake_cupy import DeviceArray, device_array, install


@pytest.fixture
def fake_cupy(monkeypatch):
    return install(monkeypatch)


def test_get_array_module_is_numpy_for_host_values():
    assert get_array_module(np.zeros(3), 1.5, None, [1, 2]) is np
    assert is_array(np.zeros(2)) and not is_array([1.0, 2.0])
    host = np.arange(3.0)
    assert to_numpy(host) is host


def test_get_array_module_finds_the_device_module(fake_cupy):
    x = np.random.default_rng(0).standard_normal(3).view(DeviceArray)
    assert get_array_module(1.0, x) is fake_cupy
    assert is_array(x)


@pytest.mark.parametrize("case", [
    dict(kernel=3, stride=1, padding=1, groups=1),      # wide-row GEMM path
    dict(kernel=3, stride=2, padding=1, groups=1),      # strided GEMM path
    dict(kernel=1, stride=1, padding=0, groups=1),      # pointwise
    dict(kernel=3, stride=1, padding=1, groups=4),      # depthwise, flat
    dict(kernel=3, stride=2, padding=1, groups=4),      # depthwise, strided
])
def test_conv_runs_on_device_arrays(fake_cupy, case):
    rng = np.random.default_rng(1)
    x = device_array(rng, (2, 4, 7, 7))
    w = device_array(rng, (4, 4 // case["groups"], case["kernel"], case["kernel"]))
    b = device_array(rng, (4,))
    side = (7 + 2 * case["padding"] - case["kernel"]) // case["stride"] + 1
    dout = device_array(rng, (2, 4, side, side))
    with fake_cupy.host_forbidden():
        out, cache = F.conv2d_forward(x, w, b, case["stride"], case["padding"], 1, case["groups"])
        dx, dw, db = F.conv2d_backward(dout, cache)
    for array in (out, dx, dw, db):
        assert isinstance(array, DeviceArray)


def test_pooling_activations_losses_and_batch_norm_run_on_device_arrays(fake_cupy):
    rng = np.random.default_rng(2)
    x = device_array(rng, (2, 3, 6, 6))
    d_pool, d_global, d_x = device_array(rng, (2, 3, 3, 3)), device_array(rng, (2, 3, 1, 1)), device_array(rng, x.shape)
    weight, bias = device_array(rng, (3,)), device_array(rng, (3,))
    mean, var = device_array(rng, (3,)), np.abs(device_array(rng, (3,))) + 1
    logits, labels = device_array(rng, (4, 5)), np.array([0, 1, 4, 2]).view(DeviceArray)
    results = []
    with fake_cupy.host_forbidden():
        for forward, backward, args in ((F.max_pool2d_forward, F.max_pool2d_backward, (3, 2, 1)),
                                        (F.avg_pool2d_forward, F.avg_pool2d_backward, (3, 2, 1, False))):
            out, cache = forward(x, *args)
            results += [out, backward(d_pool, cache)]
        results.append(F.global_avg_pool2d_backward(d_global, x.shape))
        results += [F.relu(x), F.leaky_relu(x, 0.1), F.sigmoid(x), F.tanh(x), F.softmax(x, 1),
                    F.log_softmax(x, 1)]
        results.append(F.im2col(x, 3, 1, 1))
        results.append(F.col2im(results[-1], x.shape, 3, 1, 1))
        out, cache, running = F.batch_norm_forward(x, weight, bias, mean, var, True, 0.1, 1e-5)
        results += [out, *F.batch_norm_backward(d_x, cache), *running]
        loss, cache = F.cross_entropy_forward(logits, labels)
        results += [loss, F.cross_entropy_backward(cache)]
        results += list(F.dropout_forward(x, 0.5, key=7))
    for array in results:
        assert isinstance(array, DeviceArray), type(array)
    assert fake_cupy.calls, "the kernels allocated nothing through the device module"


def test_batch_norm_returns_new_running_statistics_and_leaves_its_arguments_alone():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 3, 4, 4)) * 2 + 1
    mean, var = np.zeros(3), np.ones(3)
    out, _, (new_mean, new_var) = F.batch_norm_forward(x, np.ones(3), np.zeros(3), mean, var, True, 0.1, 1e-5)
    np.testing.assert_array_equal(mean, np.zeros(3))
    np.testing.assert_array_equal(var, np.ones(3))
    count = x.size // 3
    np.testing.assert_allclose(new_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(new_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * count / (count - 1), rtol=1e-12)
    _, _, (eval_mean, eval_var) = F.batch_norm_forward(x, np.ones(3), np.zeros(3), mean, var, False)
    assert eval_mean is mean and eval_var is var
