"""An empty batch (N = 0) through every layer, forward and backward, against PyTorch: empty
outputs and input gradients, all-zero parameter gradients, batch norm's running statistics
unchanged. Where PyTorch's answer is NaN (a loss's mean over no samples), numcnn raises a typed
error instead."""

import numpy as np
import pytest
import torch

import numcnn as nc
from numcnn.errors import ShapeError
from parity import DTYPES, check_against_torch

CASES = {
    "conv general": (lambda: nc.Conv2d(2, 4, 3, padding=1), lambda: torch.nn.Conv2d(2, 4, 3, padding=1), (0, 2, 6, 6)),
    "conv stride 2": (lambda: nc.Conv2d(2, 4, 3, stride=2, padding=1),
                      lambda: torch.nn.Conv2d(2, 4, 3, stride=2, padding=1), (0, 2, 6, 6)),
    "conv dilated": (lambda: nc.Conv2d(2, 4, 3, padding=2, dilation=2),
                     lambda: torch.nn.Conv2d(2, 4, 3, padding=2, dilation=2), (0, 2, 6, 6)),
    "conv pointwise": (lambda: nc.Conv2d(2, 4, 1), lambda: torch.nn.Conv2d(2, 4, 1), (0, 2, 6, 6)),
    "conv depthwise": (lambda: nc.Conv2d(2, 2, 3, padding=1, groups=2),
                       lambda: torch.nn.Conv2d(2, 2, 3, padding=1, groups=2), (0, 2, 6, 6)),
    "conv depthwise stride 2": (lambda: nc.Conv2d(2, 4, 3, stride=2, padding=1, groups=2),
                                lambda: torch.nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2), (0, 2, 6, 6)),
    "conv grouped": (lambda: nc.Conv2d(4, 6, 3, padding=1, groups=2),
                     lambda: torch.nn.Conv2d(4, 6, 3, padding=1, groups=2), (0, 4, 6, 6)),
    "conv no bias": (lambda: nc.Conv2d(2, 4, 3, bias=False), lambda: torch.nn.Conv2d(2, 4, 3, bias=False), (0, 2, 6, 6)),
    "linear": (lambda: nc.Linear(3, 2), lambda: torch.nn.Linear(3, 2), (0, 3)),
    "linear on 4d input": (lambda: nc.Linear(8, 2), lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 2)),
                           (0, 2, 2, 2)),
    "flatten": (lambda: nc.Flatten(), lambda: torch.nn.Flatten(), (0, 2, 3, 3)),
    "max pool": (lambda: nc.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (0, 2, 6, 6)),
    "max pool padded": (lambda: nc.MaxPool2d(3, 2, 1), lambda: torch.nn.MaxPool2d(3, 2, 1), (0, 2, 6, 6)),
    "avg pool": (lambda: nc.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (0, 2, 6, 6)),
    "avg pool padded": (lambda: nc.AvgPool2d(3, 2, 1), lambda: torch.nn.AvgPool2d(3, 2, 1), (0, 2, 6, 6)),
    "global avg pool": (lambda: nc.GlobalAvgPool2d(), lambda: torch.nn.AdaptiveAvgPool2d(1), (0, 2, 6, 6)),
    "relu": (lambda: nc.ReLU(), lambda: torch.nn.ReLU(), (0, 3)),
    "leaky relu": (lambda: nc.LeakyReLU(0.1), lambda: torch.nn.LeakyReLU(0.1), (0, 3)),
    "sigmoid": (lambda: nc.Sigmoid(), lambda: torch.nn.Sigmoid(), (0, 3)),
    "tanh": (lambda: nc.Tanh(), lambda: torch.nn.Tanh(), (0, 3)),
    "softmax": (lambda: nc.Softmax(), lambda: torch.nn.Softmax(dim=1), (0, 3)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_an_empty_batch_runs_forward_and_backward_like_torch(name, dtype):
    ours, theirs, shape = CASES[name]
    layer = ours()
    check_against_torch(layer, theirs(), shape, dtype)
    x = np.zeros(shape, dtype)
    out = layer.forward(x)
    dx = layer.backward(np.zeros_like(out))
    assert out.shape[0] == 0 and out.dtype == x.dtype and dx.shape == shape and dx.dtype == x.dtype
    for key, grad in layer.grads.items():
        assert grad is not None and grad.shape == layer.params[key].shape and not np.any(grad), key


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dims", [1, 2])
def test_batchnorm_on_an_empty_batch_is_like_torch(dims, training, momentum):
    # PyTorch 2.13 does not raise here (only for one value per channel): an empty output, zero
    # weight and bias gradients, running statistics unchanged, num_batches_tracked counted.
    ours = (nc.BatchNorm1d if dims == 1 else nc.BatchNorm2d)(2, momentum=momentum)
    theirs = (torch.nn.BatchNorm1d if dims == 1 else torch.nn.BatchNorm2d)(2, momentum=momentum)
    ours.training = training
    shape = (0, 2) if dims == 1 else (0, 2, 6, 6)
    check_against_torch(ours, theirs, shape, np.float32)  # buffers included, after the step
    before = {key: value.copy() for key, value in ours.buffers.items()}
    out = ours.forward(np.zeros(shape, np.float32))
    for key in ("running_mean", "running_var"):
        np.testing.assert_array_equal(ours.buffers[key], before[key], err_msg=key)
    assert ours.buffers["num_batches_tracked"] == before["num_batches_tracked"] + training
    assert out.shape == shape and ours.backward(out).shape == shape
    assert not np.any(ours.grads["weight"]) and not np.any(ours.grads["bias"])


def test_batchnorm_still_refuses_one_value_per_channel_in_training_like_torch():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch.nn.BatchNorm1d(2)(torch.zeros(1, 2))
    with pytest.raises(ShapeError, match="more than 1 value per channel"):
        nc.BatchNorm1d(2).forward(np.zeros((1, 2), np.float32))


@pytest.mark.parametrize("training", [True, False])
def test_dropout_passes_an_empty_batch(training):
    layer = nc.Dropout(0.5, seed=0)
    layer.training = training
    out = layer.forward(np.zeros((0, 3), np.float32))
    assert out.shape == (0, 3) and layer.backward(out).shape == (0, 3)


def test_normalize_passes_an_empty_batch():
    layer = nc.Normalize([0.5, 0.5], [0.2, 0.2])
    out = layer.forward(np.zeros((0, 2, 4, 4), np.float32))
    assert out.shape == (0, 2, 4, 4) and layer.backward(out).shape == (0, 2, 4, 4)


@pytest.mark.parametrize("loss, target", [(nc.SoftmaxCrossEntropy(), np.zeros(0, np.int64)),
                                          (nc.MSELoss(), np.zeros((0, 3), np.float32))], ids=["ce", "mse"])
def test_a_loss_over_an_empty_batch_is_a_typed_error(loss, target):
    # PyTorch's mean over no samples is NaN (0 / 0); numcnn says so instead of returning it.
    assert torch.isnan(torch.nn.functional.mse_loss(torch.zeros(0, 3), torch.zeros(0, 3)))
    with pytest.raises(ShapeError, match="empty"):
        loss.forward(np.zeros((0, 3), np.float32), target)


def test_a_model_evaluates_an_empty_batch():
    model = nc.Sequential(nc.Conv2d(1, 4, 3, padding=1), nc.BatchNorm2d(4), nc.ReLU(), nc.MaxPool2d(2),
                          nc.Conv2d(4, 4, 1), nc.Flatten(), nc.Linear(4 * 3 * 3, 5))
    model.eval()
    assert model.forward(np.zeros((0, 1, 6, 6), np.float32)).shape == (0, 5)


def test_sync_batchnorm_takes_the_statistics_of_the_other_ranks_when_its_own_batch_is_empty():
    # Two "ranks" on two threads, their reduce a sum at a barrier: the rank with no samples still
    # joins every all-reduce, and the one with samples normalises as if it were alone.
    import threading

    from numcnn.functional.norm import batch_norm_backward, batch_norm_forward

    rng = np.random.default_rng(0)
    xs = [np.zeros((0, 3, 2, 2)), rng.standard_normal((4, 3, 2, 2))]
    douts = [np.zeros((0, 3, 2, 2)), rng.standard_normal((4, 3, 2, 2))]
    barrier, slots, results = threading.Barrier(2, timeout=5), [None, None], [None, None]

    def rank(r):
        def reduce(sums, kind):
            slots[r] = sums
            barrier.wait()
            total = slots[0] + slots[1]
            barrier.wait()
            return total
        args = (np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))
        out, cache, running = batch_norm_forward(xs[r], *args, training=True, reduce=reduce)
        results[r] = out, batch_norm_backward(douts[r], cache), running

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert None not in results, "a rank failed or waited for an all-reduce the other never joined"
    alone = batch_norm_forward(xs[1], np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), training=True)
    assert results[0][0].shape == (0, 3, 2, 2) and results[0][1][0].shape == (0, 3, 2, 2)
    np.testing.assert_allclose(results[1][0], alone[0], atol=1e-12)
    np.testing.assert_allclose(results[1][1][0], batch_norm_backward(douts[1], alone[1])[0], atol=1e-12)
    np.testing.assert_allclose(results[0][2][0], alone[2][0], atol=1e-12)  # both ranks moved alike
