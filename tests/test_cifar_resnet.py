"""cifar-resnet: the ResNet-20 layout of He et al. 2016, one training step against its PyTorch twin."""

import numpy as np
import pytest
import torch

import numcnn as nc
from numcnn import zoo
from numcnn.errors import ConfigError
from parity import assert_close
from test_normalize import photo_twin


def test_width_16_is_resnet_20_with_the_papers_parameter_count():
    model = zoo.cifar_resnet(width=16)
    convs = [layer for _, layer in model.named_layers() if isinstance(layer, nc.Conv2d)]
    three_by_three = [c for c in convs if c.kernel_size == (3, 3)]
    assert len(three_by_three) + 1 == 20  # 19 convolutions and the classifier: ResNet-20
    assert sorted({c.out_channels for c in convs}) == [16, 32, 64]
    # He et al.: 0.27 M; ours counts 2 x (1x1 conv + BN) more for the two projection shortcuts.
    assert model.num_params() == sum(p.numel() for p in photo_twin().cifar_resnet(10, width=16).parameters())
    assert round(model.num_params() / 1e6, 2) == 0.27


def test_the_cpu_default_is_width_8_and_any_input_shape_works():
    assert zoo.get_model("cifar-resnet").num_params() == \
        sum(p.numel() for p in photo_twin().cifar_resnet(10, width=8).parameters())
    model = zoo.model_for("cifar-resnet", (1, 20, 20), 7, width=4, blocks=2)
    assert model.input_shape == (1, 20, 20)
    assert model.forward(np.zeros((2, 1, 20, 20), np.float32)).shape == (2, 7)
    with pytest.raises(ConfigError, match="width must be a positive int, got 0"):
        zoo.model_for("cifar-resnet", (3, 32, 32), 10, width=0)


def test_one_training_step_matches_pytorch():
    """Logits, input gradient and every parameter gradient of one train-mode step (batch-norm
    batch statistics, both shortcut kinds) agree with the twin's."""
    nc.manual_seed(0)
    ours = zoo.cifar_resnet(num_classes=5, width=4, blocks=2)
    theirs = photo_twin().cifar_resnet(5, width=4, blocks=2)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.random((6, 3, 16, 16), dtype=np.float32)
    y = rng.integers(0, 5, 6)
    loss = nc.SoftmaxCrossEntropy()
    logits = ours.train().forward(x)
    loss.forward(logits, y)
    dx = ours.backward(loss.backward())

    tx = torch.from_numpy(x.copy()).requires_grad_()
    tlogits = theirs.train()(tx)
    torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(y)).backward()
    assert_close("logits", logits, tlogits, np.float32)
    assert_close("dx", dx, tx.grad, np.float32)
    tgrads = {name: p.grad for name, p in theirs.named_parameters()}
    ograds = dict(ours.gradients())
    assert sorted(ograds) == sorted(tgrads)
    for name, grad in ograds.items():
        assert_close(f"grad {name}", grad, tgrads[name], np.float32)
