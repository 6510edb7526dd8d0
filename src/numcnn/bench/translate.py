"""A numcnn network rebuilt in PyTorch and in the textbook's layers, with the same weights.

Both translations raise ``TypeError`` for a layer they have no mirror for: the benchmark then
fails loudly instead of timing a different network.
"""

from __future__ import annotations

import numpy as np

from ..functional import pair
from ..layers import (AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Linear,
                      MaxPool2d, ReLU)
from ..model import Residual, Sequential


# -- PyTorch -------------------------------------------------------------------------------------
def to_torch(torch, model: Sequential):
    """A torch.nn.Module computing what model computes, in the model's dtype, weights copied.

    Parameters come out in the same order as numcnn's ``named_parameters`` (PyTorch's layout
    for each), so gradients compare one to one.
    """
    net = _torch_module(torch.nn, model)
    ours = [owner.params[key] for _, owner, key in model.named_parameters()]
    net = net.to(torch.float64 if ours[0].dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for param, value in zip(net.parameters(), ours, strict=True):
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return net


def _torch_module(nn, layer):
    if isinstance(layer, Residual):
        shortcut = _torch_module(nn, layer.shortcut) if layer.shortcut is not None else None
        return _residual_class(nn)(nn.Sequential(*(_torch_module(nn, child) for child in layer.layers)), shortcut)
    if isinstance(layer, Sequential):
        return nn.Sequential(*(_torch_module(nn, child) for child in layer.layers))
    if isinstance(layer, Conv2d):
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         layer.dilation, layer.groups, bias="bias" in layer.params)
    if isinstance(layer, Linear):  # numcnn's Linear flattens its input, torch's does not
        return nn.Sequential(nn.Flatten(), nn.Linear(layer.in_features, layer.out_features,
                                                     bias="bias" in layer.params))
    if isinstance(layer, BatchNorm2d):
        return nn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum)
    if isinstance(layer, MaxPool2d):
        return nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
    if isinstance(layer, AvgPool2d):
        return nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, count_include_pad=layer.count_include_pad)
    simple = {ReLU: nn.ReLU, Flatten: nn.Flatten, GlobalAvgPool2d: lambda: nn.AdaptiveAvgPool2d(1)}
    if type(layer) in simple:
        return simple[type(layer)]()
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.p)
    raise TypeError(f"bench: no PyTorch mirror for {type(layer).__name__}")


def _residual_class(nn):
    """numcnn's Residual as a torch module (made here because torch is imported lazily)."""

    class Residual(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    return Residual


# -- the textbook --------------------------------------------------------------------------------
def to_textbook(tb, model: Sequential):
    """The same network as the book's ``LayerNet`` (a flat chain of its layers), weights copied.

    tb is the textbook module (benchmarks/textbook.py). The book has no containers, batch norm,
    groups, dilation, bias-free layers or -inf padded pooling: those raise TypeError.
    """
    if type(model) is not Sequential:
        raise TypeError(f"bench: the textbook code has no {type(model).__name__}")
    return tb.LayerNet([book for layer in model.layers for book in _textbook_layers(tb, layer)])


def _textbook_layers(tb, layer) -> list:
    if isinstance(layer, (Conv2d, Linear)) and "bias" not in layer.params:
        raise TypeError(f"bench: the textbook's layers always have a bias ({type(layer).__name__})")
    if isinstance(layer, Conv2d):
        (sh, sw), (ph, pw) = pair(layer.stride, "stride", 1), _square_padding(layer.padding)
        if layer.groups != 1 or pair(layer.dilation, "dilation", 1) != (1, 1) or sh != sw or ph != pw:
            raise TypeError(f"bench: the textbook's Convolution cannot express {layer.config()}")
        return [tb.Convolution(layer.params["weight"].copy(), layer.params["bias"].copy(), sh, ph)]
    if isinstance(layer, Linear):  # the book keeps Affine's W as (in, out)
        return [tb.Affine(layer.params["weight"].T.copy(), layer.params["bias"].copy())]
    if isinstance(layer, ReLU):
        return [tb.Relu()]
    if isinstance(layer, MaxPool2d):
        kh, kw = pair(layer.kernel_size, "kernel_size", 1)
        (sh, sw), (ph, pw) = pair(layer.stride or layer.kernel_size, "stride", 1), _square_padding(layer.padding)
        if sh != sw or ph or pw:  # the book pads pools with zeros, not -inf
            raise TypeError("bench: the textbook's Pooling cannot express a padded or non-square max pool")
        return [tb.Pooling(kh, kw, sh, 0)]
    if isinstance(layer, Flatten):
        return []  # the book's Affine flattens its input itself
    if isinstance(layer, Dropout):
        return [tb.Dropout(layer.p)]
    raise TypeError(f"bench: the textbook code has no {type(layer).__name__}")


def _square_padding(padding) -> tuple[int, int]:
    if isinstance(padding, str):
        raise TypeError(f"bench: the textbook code has no padding={padding!r}")
    return pair(padding, "padding")
