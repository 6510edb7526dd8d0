"""The device seam end to end, without a GPU: models, optimizers, the trainer and the parity
harness run on the stand-in "cupy" of fake_cupy.py, whose arrays are NumPy's underneath.

What runs on a real GPU is the same code; ``make gpu-check`` runs the cuda half of the parity
suite there. Here every array that should stay on the device must come back as a DeviceArray,
and training on the "device" must give the host's numbers.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

import numcnn as nc
from numcnn import optim
from numcnn.backend import check_device, device_of, to_device, to_numpy
from numcnn.errors import DeviceError
from numcnn.train import Trainer

from fake_cupy import DeviceArray, install
from parity import CUDA_MISSING, check_against_torch, needs_cuda
from test_train import tiny_net


@pytest.fixture
def fake_cupy(monkeypatch):
    return install(monkeypatch)


def arrays_of(model, optimizer=None):
    for _, layer in model.named_layers():
        for store in (layer.params, layer.grads, layer.buffers):
            yield from store.values()
    if optimizer is not None:
        for state in optimizer.state.values():
            yield from state.values()


def uint8_images(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:0", "cuda:12"])
def test_check_device_accepts_torch_style_names(name):
    assert check_device(name) == name


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:", "cuda:x", "cpu:0", "", None, 0])
def test_check_device_names_what_it_got(name):
    with pytest.raises(DeviceError, match="expected a device 'cpu', 'cuda' or 'cuda:N', got"):
        check_device(name)


def test_cuda_without_cupy_is_a_device_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    with pytest.raises(DeviceError, match="needs CuPy"):
        tiny_net().to("cuda")


def test_model_and_optimizer_move_to_the_device_and_back(fake_cupy):
    model = tiny_net()
    optimizer = optim.Adam(model, lr=1e-2)
    x, y = uint8_images(8)
    trainer = Trainer(model, nc.SoftmaxCrossEntropy(), optimizer, seed=0, progress=False)
    trainer.fit(x, y, epochs=1, batch_size=4)  # optimizer state now exists, on the host
    assert model.device == "cpu"
    before = model.state_dict()

    model.to("cuda")
    optimizer.to("cuda")
    assert model.device == "cuda:0"
    moved = list(arrays_of(model, optimizer))
    assert moved and all(type(a) is DeviceArray for a in moved)
    saved = model.state_dict()  # host copies, whatever the device
    assert all(type(a) is np.ndarray for a in saved.values())
    for key in before:
        np.testing.assert_array_equal(saved[key], before[key])

    model.to("cpu")
    optimizer.to("cpu")
    assert model.device == "cpu"
    assert all(type(a) is np.ndarray for a in arrays_of(model, optimizer))


def test_one_step_on_the_device_allocates_nothing_on_the_host(fake_cupy):
    model = tiny_net().to("cuda")
    optimizer = optim.Adam(model, lr=1e-2)
    loss = nc.SoftmaxCrossEntropy()
    x = to_device(np.random.default_rng(0).random((6, 1, 28, 28), dtype=np.float32), "cuda")
    y = to_device(np.arange(6), "cuda")
    with fake_cupy.host_forbidden():
        for _ in range(2):  # the second step updates optimizer state that already exists
            optimizer.zero_grad()
            value = loss.forward(model.forward(x), y)
            model.backward(loss.backward())
            optimizer.step()
    assert type(value) is DeviceArray and value.shape == ()  # no host sync inside the loss
    assert all(type(a) is DeviceArray for a in arrays_of(model, optimizer))


def test_training_on_the_device_gives_the_host_run(fake_cupy, tmp_path, monkeypatch):
    """Same seed, same data: the device run's losses, weights and checkpoint are the host's.

    The device path cuts work into one piece where the host cuts eight, so sums may round
    differently: float32 rounding is allowed, nothing more. (SGD, because Adam would blow the
    rounding noise of the conv bias's zero gradient, it being followed by batch norm, up to
    steps of size lr.)
    """
    x, y = uint8_images()

    def run(device, out_dir):
        model = tiny_net().to(device)
        optimizer = optim.SGD(model, lr=0.05, momentum=0.9)
        trainer = Trainer(model, nc.SoftmaxCrossEntropy(), optimizer, seed=3, out_dir=out_dir, progress=False)
        history = trainer.fit(x, y, epochs=2, batch_size=20, validation=(x[:30], y[:30]))
        return trainer, history

    moved = []
    real_to_device = to_device

    def spy(array, device):
        moved.append((getattr(array, "dtype", None), device))
        return real_to_device(array, device)

    monkeypatch.setattr("numcnn.inference.to_device", spy)  # where every batch travels to the model
    on_device, device_history = run("cuda", tmp_path / "device")
    monkeypatch.undo()
    install(monkeypatch)
    on_host, host_history = run("cpu", tmp_path / "host")

    # the images travelled as uint8 and became floats on the device
    image_moves = [dtype for dtype, _ in moved if dtype is not None and dtype.kind == "u"]
    assert image_moves and all(device == "cuda:0" for _, device in moved)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(device_history[key], host_history[key], rtol=2e-5, err_msg=key)
    assert all(type(a) is DeviceArray for a in arrays_of(on_device.model, on_device.optimizer))
    device_weights, host_weights = on_device.model.state_dict(), on_host.model.state_dict()
    for key in host_weights:
        np.testing.assert_allclose(device_weights[key], host_weights[key], rtol=1e-4, atol=1e-5, err_msg=key)

    # the device run's checkpoint is host arrays and resumes on the CPU
    resumed = Trainer.resume(tmp_path / "device", progress=False)
    assert resumed.model.device == "cpu" and resumed.epoch == 2
    resumed.fit(x, y, epochs=3, batch_size=20)
    assert len(resumed.history["loss"]) == 3 and np.isfinite(resumed.history["loss"][-1])


def test_a_device_model_predicts_host_probabilities(fake_cupy):
    model = tiny_net()
    x, _ = uint8_images(7)
    on_host = nc.train.predict_proba(model, x, batch_size=3)
    on_device = nc.train.predict_proba(model.to("cuda"), x, batch_size=3)
    assert type(on_device) is np.ndarray
    np.testing.assert_allclose(on_device, on_host, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("ours, theirs, shape", [
    (lambda: nc.Conv2d(3, 4, 3, stride=2, padding=1), lambda: torch.nn.Conv2d(3, 4, 3, stride=2, padding=1),
     (2, 3, 7, 7)),
    (lambda: nc.Conv2d(4, 4, 3, padding=1, groups=4), lambda: torch.nn.Conv2d(4, 4, 3, padding=1, groups=4),
     (2, 4, 6, 6)),
    (lambda: nc.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda: nc.MaxPool2d(3, 2, 1), lambda: torch.nn.MaxPool2d(3, 2, 1), (2, 3, 7, 7)),
    (lambda: nc.Linear(12, 5), lambda: torch.nn.Linear(12, 5), (3, 12)),
])
def test_the_parity_harness_runs_layers_on_the_device(fake_cupy, ours, theirs, shape):
    layer = ours()
    check_against_torch(layer, theirs(), shape, np.float32, seed=1, device="cuda")
    assert device_of(layer.params.get("weight", np.empty(0).view(DeviceArray))) == "cuda:0"


def test_the_parity_harness_fails_when_a_layer_leaves_the_device(fake_cupy):
    class Leaky(nc.ReLU):
        def forward(self, x):
            return np.asarray(super().forward(x)).view(np.ndarray)  # back on the host

    with pytest.raises(AssertionError, match="output ndarray"):
        check_against_torch(Leaky(), torch.nn.ReLU(), (2, 3), np.float32, device="cuda")


@pytest.mark.skipif(CUDA_MISSING is None, reason="this machine has a usable GPU; the error needs one without")
def test_cli_cuda_without_a_gpu_is_one_error_line_before_any_work(tmp_path):
    done = subprocess.run([sys.executable, "-m", "numcnn", "train", "--dataset", "sample", "--device", "cuda",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: device 'cuda'"), done.stderr
    assert done.stdout == "" and not (tmp_path / "run").exists()


def test_cli_rejects_an_unknown_device_by_name(tmp_path):
    done = subprocess.run([sys.executable, "-m", "numcnn", "evaluate", str(tmp_path), "--device", "gpu"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: expected a device 'cpu', 'cuda' or 'cuda:N', got 'gpu'"


# -- on a real GPU (make gpu-check); skipped, with the reason, everywhere else ------------------

def _losses(device, steps=8, seed=0):
    """Per-step training losses of tiny_net (SGD with momentum, dropout on) on device."""
    model = tiny_net(seed).to(device)
    optimizer = optim.SGD(model, lr=0.01, momentum=0.9)
    loss = nc.SoftmaxCrossEntropy()
    x, y = uint8_images(steps * 16, seed)
    losses = []
    for step in range(steps):
        part = slice(step * 16, (step + 1) * 16)
        xb, yb = nc.train.to_model_device(model, x[part], y[part])
        optimizer.zero_grad()
        losses.append(float(loss.forward(model.forward(xb), yb)))
        model.backward(loss.backward())
        optimizer.step()
    return np.array(losses), model


@pytest.mark.cuda
@needs_cuda
def test_cuda_training_follows_the_cpu_loss_curve():
    on_cpu, cpu_model = _losses("cpu")
    on_gpu, gpu_model = _losses("cuda")
    assert gpu_model.device.startswith("cuda")
    # The same masks and batches: only the order of float32 sums differs, a few ulps a step.
    np.testing.assert_allclose(on_gpu[:4], on_cpu[:4], rtol=1e-5)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("make", [
    lambda: nc.Sequential(nc.Conv2d(3, 8, 3, stride=2, padding=1), nc.BatchNorm2d(8), nc.ReLU(), nc.MaxPool2d(2),
                          nc.Conv2d(8, 8, 3, padding=1, groups=8), nc.AvgPool2d(2), nc.Flatten(), nc.Linear(8 * 4 * 4, 5)),
])
def test_cuda_model_matches_numcnn_on_the_cpu(make):
    nc.manual_seed(0)
    on_cpu = make()
    on_gpu = make()
    on_gpu.load_state_dict(on_cpu.state_dict())
    on_gpu.to("cuda")
    x = np.random.default_rng(0).standard_normal((6, 3, 32, 32)).astype(np.float32)
    dout = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    out_cpu, out_gpu = on_cpu.forward(x), on_gpu.forward(to_device(x, "cuda"))
    dx_cpu, dx_gpu = on_cpu.backward(dout), on_gpu.backward(to_device(dout, "cuda"))
    np.testing.assert_allclose(to_numpy(out_gpu), out_cpu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(dx_gpu), dx_cpu, rtol=1e-4, atol=1e-5)
    for (name, g_cpu), (_, g_gpu) in zip(on_cpu.gradients(), on_gpu.gradients()):
        np.testing.assert_allclose(to_numpy(g_gpu), g_cpu, rtol=1e-4, atol=1e-5, err_msg=name)


def test_the_serve_explainer_computes_on_the_device(fake_cupy):
    """numcnn serve --device cuda: the page's numbers are the host's, the model stays on the device."""
    from numcnn.serve.explain import Explainer

    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    model = tiny_net().eval()
    on_host = Explainer(model, {"classes": [str(k) for k in range(10)]})
    expected = on_host.explain(x), on_host.detail(x, 0, 1, 3, 4)
    on_device = Explainer(model.to("cuda"), {"classes": [str(k) for k in range(10)]})
    got = on_device.explain(x), on_device.detail(x, 0, 1, 3, 4)
    assert model.device == "cuda:0"
    np.testing.assert_allclose(got[0]["probabilities"], expected[0]["probabilities"], rtol=1e-5)
    assert got[0]["saliency"]["shape"] == expected[0]["saliency"]["shape"]
    assert got[1]["value"] == pytest.approx(expected[1]["value"], rel=1e-6)
    assert got[1]["im2col"]["dot"] == pytest.approx(got[1]["value"], rel=1e-5)


def test_summary_of_a_model_on_the_device(fake_cupy):
    text = tiny_net().to("cuda").summary()
    assert "(N, 4, 13, 13)" in text and "(N, 10)" in text and "total params: 6,818" in text


def test_a_training_step_reads_one_value_back_from_the_device(fake_cupy):
    """The loss, once per step (to stop on divergence); the accuracy and the weights' check once
    per epoch; nothing inside the kernels."""
    x, y = uint8_images(60)
    model = tiny_net().to("cuda")
    trainer = Trainer(model, nc.SoftmaxCrossEntropy(), optim.SGD(model, lr=0.01), seed=0, progress=False)
    fake_cupy.syncs.clear()
    trainer.fit(x, y, epochs=1, batch_size=10)
    steps, params = 6, len(list(model.named_parameters()))
    assert sum(shape == () for shape in fake_cupy.syncs) == steps + 1 + params  # losses, correct, finiteness
    assert len(fake_cupy.syncs) == steps + 1 + params


def test_a_host_input_to_a_device_model_is_a_device_error(fake_cupy):
    model = tiny_net().to("cuda")
    with pytest.raises(DeviceError, match=r"Conv2d: the input is on cpu but the weight on cuda:0"):
        model.forward(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(DeviceError, match=r"Linear: the input is on cuda:0 but the weight on cpu"):
        nc.Linear(4, 2).forward(to_device(np.zeros((3, 4), np.float32), "cuda"))
