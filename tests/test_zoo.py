"""The model zoo: layer layouts, output shapes, parameter counts, and the forward pass against torch."""

import numpy as np
import pytest
import torch

import numcnn as nc
from numcnn import zoo
from numcnn.errors import ConfigError
from numcnn.model import from_config, to_config


def _linears(model):
    return [layer for _, layer in model.named_layers() if isinstance(layer, nc.Linear)]


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_every_model_maps_a_batch_to_logits_and_records_its_input(name):
    nc.manual_seed(0)
    model = zoo.get_model(name)
    shape = (3, 32, 32) if name == "cifar-resnet" else (1, 28, 28)  # each model's default input
    x = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    assert model.eval().forward(x).shape == (3, 10)
    assert model.input_shape == shape
    rebuilt = from_config(to_config(model))  # the architecture survives save/load
    rebuilt.load_state_dict(model.state_dict())
    assert np.array_equal(rebuilt.eval().forward(x), model.forward(x))


def test_simple_convnet_is_the_books_chapter_7_network():
    model = zoo.simple_convnet()
    conv = model[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == (1, 30, (5, 5), 1, 0)
    assert [type(layer).__name__ for layer in model] == ["Conv2d", "ReLU", "MaxPool2d", "Linear", "ReLU", "Linear"]
    assert [(l.in_features, l.out_features) for l in _linears(model)] == [(4320, 100), (100, 10)]
    assert model.num_params() == (30 * 25 + 30) + (4320 * 100 + 100) + (100 * 10 + 10)


def test_linear_sizes_follow_the_input_size():
    # 32 -> conv5 -> 28 -> pool -> 14: 30 * 14 * 14 features
    assert _linears(zoo.simple_convnet(in_channels=3, input_size=32))[0].in_features == 30 * 14 * 14
    model = zoo.simple_convnet(in_channels=3, num_classes=7, input_size=32)
    assert model.forward(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 7)
    assert _linears(zoo.lenet5(input_size=32))[0].in_features == 16 * 6 * 6


def test_deep_convnet_matches_the_book_layout():
    model = zoo.deep_convnet()
    convs = [layer for layer in model if isinstance(layer, nc.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 32, 32, 64, 64]
    assert [c.padding for c in convs] == [1, 1, 1, 2, 1, 1]  # the book pads the 4th conv by 2
    assert [(l.in_features, l.out_features) for l in _linears(model)] == [(64 * 4 * 4, 50), (50, 10)]
    assert [type(layer).__name__ for layer in model][-5:] == ["Linear", "ReLU", "Dropout", "Linear", "Dropout"]
    assert [layer.p for layer in model if isinstance(layer, nc.Dropout)] == [0.5, 0.5]
    convs_params = sum(c.params["weight"].size + c.params["bias"].size for c in convs)
    assert convs_params == 160 + 2320 + 4640 + 9248 + 18496 + 36928


def test_param_counts_of_the_other_models():
    assert zoo.mlp().num_params() == 784 * 100 + 100 + 100 * 10 + 10
    assert zoo.mlp(hidden=(50, 20)).num_params() == 784 * 50 + 50 + 50 * 20 + 20 + 20 * 10 + 10
    assert zoo.lenet5().num_params() == 156 + 2416 + 48120 + 10164 + 850
    assert zoo.deep_convnet().num_params() == 123552
    assert isinstance(zoo.lenet5(activation="tanh")[1], nc.Tanh)


def test_fashion_net_uses_batch_norm_residual_blocks_and_global_pooling():
    model = zoo.fashion_net(width=8)
    kinds = {type(layer).__name__ for _, layer in model.named_layers()}
    assert {"BatchNorm2d", "Residual", "GlobalAvgPool2d", "Dropout"} <= kinds
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    assert model.forward(x).shape == (4, 10)
    model.backward(np.ones((4, 10), np.float32))  # trains: every layer has a backward


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="simple-convnet, mlp, lenet5, deep-convnet, fashion-net"):
        zoo.get_model("resnet152")
    with pytest.raises(ConfigError, match="too small"):
        zoo.simple_convnet(input_size=4)
    with pytest.raises(ConfigError):
        zoo.lenet5(activation="gelu")
    with pytest.raises(ConfigError):
        zoo.deep_convnet(num_classes=0)
    assert zoo.get_model("Simple_ConvNet").num_params() == zoo.simple_convnet().num_params()


def _torch_twin(model):
    """torch.nn.Sequential of the same layers (plain ones only), our weights copied in."""
    twins = []
    for layer in model:
        if isinstance(layer, nc.Conv2d):
            t = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, nc.Linear):
            t = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(layer.in_features, layer.out_features))
        elif isinstance(layer, nc.MaxPool2d):
            t = torch.nn.MaxPool2d(layer.kernel_size)
        elif isinstance(layer, nc.AvgPool2d):
            t = torch.nn.AvgPool2d(layer.kernel_size)
        else:
            t = {"ReLU": torch.nn.ReLU, "Tanh": torch.nn.Tanh, "Dropout": torch.nn.Dropout}[type(layer).__name__]()
        with torch.no_grad():
            target = t[1] if isinstance(t, torch.nn.Sequential) else t
            for key, value in layer.params.items():
                getattr(target, key).copy_(torch.from_numpy(value))
        twins.append(t)
    return torch.nn.Sequential(*twins).eval()


@pytest.mark.parametrize("name", ["simple-convnet", "lenet5", "deep-convnet"])
def test_forward_matches_torch(name):
    nc.manual_seed(3)
    model = zoo.get_model(name).eval()
    x = np.random.default_rng(2).random((2, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expected = _torch_twin(model)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-4, atol=1e-5)
