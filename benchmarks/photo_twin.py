"""The PyTorch twin of a numcnn image-folder run: same data, model, init, augmentation,
optimizer and schedule, written in plain PyTorch (no numcnn inside), to compare accuracy.

It mirrors

    numcnn train --dataset PATH --model cifar-resnet --width W --augment --batch-size 128 \\
        --optimizer adamw --lr 3e-3 --weight-decay 5e-4 --schedule warmup-cosine --epochs E --seed 0

    python benchmarks/photo_twin.py PATH --width W --epochs E

What is the same: the folder read with Pillow (classes sorted by name, train/ and test/),
pixels / 255, per-channel mean and std of the training set applied by the model's first
module, ResNet-20-style layers position for position (so state dicts interchange with
numcnn's), He-normal weights with zero biases, random shifts of up to 4 pixels with zero fill
plus left-right flips, AdamW with decoupled decay on every parameter, one epoch of linear
warm-up from a third of the rate and a cosine to 0 stepped every batch, and evaluation of the
test set after every epoch. What differs: the random numbers (weights, order, augmentation),
which PyTorch draws from its own generators.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


class Normalize(nn.Module):
    """(x - mean[c]) / std[c], with the statistics as buffers "mean" and "std" like numcnn's."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean[:, None, None]) / self.std[:, None, None]


class Residual(nn.Module):
    """body(x) + shortcut(x), the body's layers named "0", "1", ... as in a numcnn Residual."""

    def __init__(self, *body, shortcut=None):
        super().__init__()
        for i, layer in enumerate(body):
            self.add_module(str(i), layer)
        self.depth = len(body)
        self.shortcut = shortcut

    def forward(self, x):
        out = x
        for i in range(self.depth):
            out = getattr(self, str(i))(out)
        return out + (self.shortcut(x) if self.shortcut is not None else x)


def _block(c_in: int, c_out: int, stride: int) -> Residual:
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
    return Residual(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                    nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), shortcut=shortcut)


def cifar_resnet(num_classes: int, mean=None, std=None, width: int = 8, blocks: int = 3,
                 in_channels: int = 3) -> nn.Sequential:
    """numcnn.zoo.cifar_resnet in PyTorch, with a Normalize first when mean and std are given."""
    layers = [] if mean is None else [Normalize(mean, std)]
    layers += [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    channels = width
    for stage in range(3):
        out = width * 2**stage
        for block in range(blocks):
            layers += [_block(channels, out, 2 if stage and not block else 1), nn.ReLU()]
            channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    model = nn.Sequential(*layers)
    for module in model.modules():  # numcnn's init: He normal (fan in), zero biases
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def read_folder(path: Path):
    """(x_train, y_train), (x_test, y_test), classes: uint8 (N, 3, H, W) and int64 labels."""
    from PIL import Image

    classes = sorted(p.name for p in (path / "train").iterdir() if p.is_dir())
    splits = []
    for part in ("train", "test"):
        files = [(f, k) for k, name in enumerate(classes) for f in sorted((path / part / name).iterdir())]
        x = np.stack([np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f, _ in files])
        splits.append((x, np.array([k for _, k in files], np.int64)))
    return splits[0], splits[1], classes


def augment(xb: torch.Tensor, rng: np.random.Generator, shift: int = 4) -> torch.Tensor:
    """Random shift of up to `shift` pixels (zero fill) and a left-right flip with p = 0.5."""
    n, _, h, w = xb.shape
    padded = nn.functional.pad(xb, (shift, shift, shift, shift))
    dy, dx = rng.integers(0, 2 * shift + 1, n), rng.integers(0, 2 * shift + 1, n)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    flip = torch.from_numpy(rng.random(n) < 0.5)
    out[flip] = out[flip].flip(-1)
    return out


def evaluate(model, x, y, batch_size: int = 500) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[start:start + batch_size]).float() / 255
            correct += int((model(xb).argmax(1) == torch.from_numpy(y[start:start + batch_size])).sum())
    return correct / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    (x, y), (x_test, y_test), classes = read_folder(args.folder)
    pixels = x.transpose(1, 0, 2, 3).reshape(3, -1) / 255.0
    mean, std = pixels.mean(axis=1), pixels.std(axis=1)
    model = cifar_resnet(len(classes), mean, std, width=args.width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    per_epoch = math.ceil(len(x) / args.batch_size)
    total = per_epoch * args.epochs
    warmup = min(per_epoch, total - 1)  # as numcnn's recipe plans it
    schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / 3, total_iters=warmup),
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup)], milestones=[warmup])
    loss_fn = nn.CrossEntropyLoss()
    print(f"PyTorch {torch.__version__}, {args.threads} threads: {len(x)} train + {len(x_test)} test images, "
          f"{len(classes)} classes, {sum(p.numel() for p in model.parameters()):,} parameters")
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        order = rng.permutation(len(x))
        loss_sum = 0.0
        for first in range(0, len(x), args.batch_size):
            idx = order[first:first + args.batch_size]
            xb = augment(torch.from_numpy(x[idx]).float() / 255, rng)
            loss = loss_fn(model(xb), torch.from_numpy(y[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(idx)
        elapsed = time.perf_counter() - start
        print(f"epoch {epoch}/{args.epochs}  loss {loss_sum / len(x):.4f}  test accuracy "
              f"{evaluate(model, x_test, y_test):.4f}  {elapsed:.1f} s", flush=True)


if __name__ == "__main__":
    main()
