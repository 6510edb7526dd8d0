"""What is timed: the layer and network workloads, their inputs and their flop counts.

A workload is a description, not code that runs; ``runners.py`` turns it into one call per
implementation. Every process that times a workload builds the same arrays and the same
weights from fixed seeds, so the outputs of separate processes can be compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .. import zoo
from ..functional import output_size
from ..init import manual_seed
from ..layers import BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Linear, ReLU
from ..model import Residual, Sequential
from ..recipe import cast_model


@dataclass(frozen=True)
class LayerCase:
    """One layer on one input: x (n, c, h, h); conv weight (f, c // groups, k, k)."""

    name: str
    op: str                 # "conv", "max_pool" or "avg_pool"
    n: int
    c: int
    h: int
    k: int
    f: int = 0
    stride: int = 1
    pad: int = 0
    groups: int = 1

    def describe(self) -> str:
        extra = "".join(f" {label}{value}" for label, value, default in
                        (("stride ", self.stride, 1 if self.op == "conv" else self.k),
                         ("pad ", self.pad, 0), ("groups ", self.groups, 1)) if value != default)
        if self.op == "conv":
            return f"conv   N={self.n} C={self.c} {self.h}x{self.h} -> F={self.f} {self.k}x{self.k}{extra}"
        return f"{self.op.replace('_', ' ')} N={self.n} C={self.c} {self.h}x{self.h}, {self.k}x{self.k}{extra}"

    def out_side(self) -> int:
        return output_size(self.h, self.k, self.stride, self.pad, self.pad, 1)

    def flops(self, mode: str) -> float | None:
        """2 per multiply-add of the convolution; backward is two more products of that size."""
        if self.op != "conv":
            return None
        fwd = 2.0 * self.n * self.f * self.out_side() ** 2 * (self.c // self.groups) * self.k ** 2
        return fwd if mode == "fwd" else 3 * fwd


@dataclass(frozen=True)
class NetCase:
    """One training step (forward, loss, backward, Adam update) of a network on a random batch:
    x (batch, *input_shape), labels y (batch,) in 0..9."""

    name: str
    network: str                        # a key of NETWORKS
    batch: int
    input_shape: tuple[int, int, int]   # (C, H, W) of one sample
    in_textbook: bool = True            # False where the book has no such layers (batch norm)

    def describe(self) -> str:
        c, h, w = self.input_shape
        return f"train step, batch {self.batch}, {c}x{h}x{w} input, {self.network}"


def residual_block(channels: int = 32, side: int = 32) -> Sequential:
    """The CIFAR ResNet basic block, x + BN(conv(ReLU(BN(conv(x))))) then ReLU, 3x3 convs
    without bias; a global average pool and a Linear to 10 classes make a loss possible
    (they cost under 1% of the block). Input (N, channels, side, side)."""
    block = Residual(Conv2d(channels, channels, 3, padding=1, bias=False), BatchNorm2d(channels), ReLU(),
                     Conv2d(channels, channels, 3, padding=1, bias=False), BatchNorm2d(channels))
    return Sequential(block, ReLU(), GlobalAvgPool2d(), Flatten(), Linear(channels, 10),
                      input_shape=(channels, side, side))


# Each takes the (C, H, W) of one sample. The zoo builds the book's networks: if it cannot,
# the bench fails rather than time some other network.
NETWORKS = {
    "simple_convnet": lambda shape: zoo.simple_convnet(in_channels=shape[0], input_size=shape[1]),
    "deep_convnet": lambda shape: zoo.deep_convnet(in_channels=shape[0], input_size=shape[1]),
    "residual_block": lambda shape: residual_block(channels=shape[0], side=shape[1]),
    "cifar_resnet": lambda shape: zoo.cifar_resnet(in_channels=shape[0], input_size=shape[1]),
}

LAYER_CASES = [
    LayerCase("L1", "conv", 100, 1, 28, 5, f=30),
    LayerCase("L2", "conv", 100, 16, 28, 3, f=16, pad=1),
    LayerCase("L3", "conv", 64, 64, 32, 3, f=64, pad=1),
    LayerCase("L4", "conv", 32, 128, 16, 3, f=128, stride=2, pad=1),
    LayerCase("C3", "conv", 64, 3, 32, 3, f=32, pad=1),
    LayerCase("P1", "max_pool", 100, 30, 24, 2, stride=2),
    LayerCase("P2", "avg_pool", 64, 64, 32, 3, stride=2, pad=1),
    LayerCase("C1x1", "conv", 64, 64, 32, 1, f=128),
    LayerCase("DW", "conv", 64, 64, 32, 3, f=64, pad=1, groups=64),
]
NET_CASES = [
    NetCase("SimpleConvNet", "simple_convnet", 100, (1, 28, 28)),
    NetCase("DeepConvNet", "deep_convnet", 100, (1, 28, 28)),
    NetCase("ResBlock", "residual_block", 128, (32, 32, 32), in_textbook=False),
]
CASES = {case.name.lower(): case for case in LAYER_CASES + NET_CASES}
# Profiled (benchmarks/profile_step.py), not in the bench's table: ResNet-20 at width 8.
PROFILE_CASES = {"cifarresnet": NetCase("CifarResNet", "cifar_resnet", 128, (3, 32, 32), in_textbook=False)}
EPOCH_CASE = CASES["simpleconvnet"]                                   # --epoch
MEMORY_CASE = NetCase("DeepConvNet", "deep_convnet", 256, (1, 28, 28))  # --memory


def quick(case):
    """The same workload shrunk to a few kilobytes, for smoke tests."""
    if isinstance(case, NetCase):
        c, side = case.input_shape[:2]
        # The zoo's nets need their 28x28 input; the residual block works at any size.
        shape = case.input_shape if case.network != "residual_block" else (min(c, 8), 8, 8)
        return replace(case, batch=4, input_shape=shape)
    c = min(case.c, 8)
    return replace(case, n=2, c=c, h=min(case.h, 8), f=min(case.f, 8) if case.f else 0,
                   groups=c if case.groups > 1 else 1)


def with_batch(case, batch: int):
    """The same workload with another batch size."""
    return replace(case, batch=batch) if isinstance(case, NetCase) else replace(case, n=batch)


# -- inputs --------------------------------------------------------------------------------------
def layer_inputs(case: LayerCase, dtype) -> dict[str, np.ndarray]:
    """x (n, c, h, h) and dout (n, out_c, oh, oh); for a conv also w (f, c // groups, k, k)
    (He-scaled) and b (f,). Seeded: every process draws the same arrays."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((case.n, case.c, case.h, case.h)).astype(dtype)
    side = case.out_side()
    out_c = case.f if case.op == "conv" else case.c
    arrays = {"x": x, "dout": rng.standard_normal((case.n, out_c, side, side)).astype(dtype)}
    if case.op == "conv":
        fan_in = case.c // case.groups * case.k ** 2
        arrays["w"] = (rng.standard_normal((case.f, case.c // case.groups, case.k, case.k))
                       * np.sqrt(2.0 / fan_in)).astype(dtype)
        arrays["b"] = rng.standard_normal(case.f).astype(dtype)
    return arrays


def net_inputs(case: NetCase, dtype) -> tuple[np.ndarray, np.ndarray]:
    """x (batch, C, H, W) uniform in [0, 1), y (batch,) int64 labels; seeded."""
    rng = np.random.default_rng(1)
    return rng.random((case.batch, *case.input_shape)).astype(dtype), rng.integers(0, 10, case.batch)


def build_net(case: NetCase, dtype, dropout: bool = True) -> Sequential:
    """numcnn's model for the case, parameters and buffers in dtype, drawn from seed 0 so that
    every process builds the same weights. dropout=False sets every Dropout's p to 0, for a
    check that compares deterministic steps."""
    manual_seed(0)
    model = NETWORKS[case.network](case.input_shape)
    cast_model(model, dtype)
    for _, layer in model.named_layers():
        if isinstance(layer, Dropout) and not dropout:
            layer.p = 0.0
    return model


def net_flops(case: NetCase) -> float:
    """Flops of one training step: 2 per multiply-add of every Conv2d and Linear, forward
    and backward (3x the forward, as for a layer), counted on one sample then scaled."""
    model = build_net(case, np.float32).eval()
    forward_flops = 0.0

    def counting(layer, forward):
        def run(x, *fused):
            nonlocal forward_flops
            y = forward(x, *fused)
            if isinstance(layer, Conv2d):
                per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
            else:
                per_output = layer.in_features
            forward_flops += 2.0 * y.size * per_output
            return y
        return run

    # Wrap this throwaway model's own instances, so any topology (residual blocks too) counts,
    # and both ways a layer runs: alone, or with the ReLU after it fused in.
    for _, layer in model.named_layers():
        if isinstance(layer, (Conv2d, Linear)):
            layer.forward = counting(layer, layer.forward)
            layer.forward_fused = counting(layer, layer.forward_fused)
    model.forward(np.zeros((1, *case.input_shape), np.float32))
    return 3 * forward_flops * case.batch


def epoch_data(quick_run: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """x (N, 1, 28, 28) float32, y (N,) int64 and where they came from, for --epoch.

    Fashion-MNIST's training set if it is on disk (never downloaded here); else, and with
    --quick, random images of the same shape, and the source says so: a step costs the same."""
    from ..data import load
    reason = "--quick"
    if not quick_run:
        try:
            (x, y), _ = load("fashion-mnist", download=False)
            return x, y, "Fashion-MNIST"
        except Exception as exc:  # the cause is named in the printed source
            reason = f"Fashion-MNIST is not on disk: {type(exc).__name__}"
    size = 100 if quick_run else 60000
    rng = np.random.default_rng(0)
    x, y = rng.random((size, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, size)
    return x, y, f"random {size}x1x28x28 images ({reason})"
