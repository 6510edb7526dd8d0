"""Colour augmentation and uint8 images: ColorJitter against the same operations written in
torch, the CIFAR augmentation recipe, and uint8 data training exactly like its float32 copy."""

import numpy as np
import pytest
import torch

import numcnn as nc
from numcnn import data
from numcnn.data import ColorJitter, DataLoader, as_float_images
from numcnn.errors import ConfigError


def torch_jitter(x: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """torchvision's adjust_brightness then adjust_contrast, in torch, for given factors."""
    t = torch.from_numpy(x)
    b = torch.from_numpy(b).view(-1, 1, 1, 1)
    c = torch.from_numpy(c).view(-1, 1, 1, 1)
    t = (t * b).clamp(0, 1)
    if t.shape[1] == 3:
        gray = 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]
    else:
        gray = t[:, 0]
    mean = gray.mean(dim=(1, 2)).view(-1, 1, 1, 1)
    return (c * t + (1 - c) * mean).clamp(0, 1).numpy()


@pytest.mark.parametrize("channels", [1, 3])
def test_color_jitter_matches_torchvisions_two_operations(channels):
    x = np.random.default_rng(0).random((6, channels, 5, 7)).astype(np.float32)
    jitter = ColorJitter(0.4, 0.3)
    out = jitter(x, np.random.default_rng(1))
    draws = np.random.default_rng(1)  # the same generator state: the factors jitter drew
    b = draws.uniform(0.6, 1.4, 6).astype(np.float32)
    c = draws.uniform(0.7, 1.3, 6).astype(np.float32)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, torch_jitter(x, b, c), atol=2e-6)
    assert not np.array_equal(out, x) and 0 <= out.min() and out.max() <= 1


def test_jitter_strength_zero_draws_nothing_and_bad_strengths_are_refused():
    x = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(ColorJitter()(x, rng), x)
    assert rng.random() == np.random.default_rng(5).random()
    with pytest.raises(ConfigError, match=r"brightness in \[0, 1\], got 1.5"):
        ColorJitter(1.5)


def test_cifar_augmentation_is_a_4_pixel_padded_crop_and_a_flip_with_optional_jitter():
    assert repr(data.default_augmentation("cifar10")) == \
        "Compose([RandomShift(max_shift=4), RandomHorizontalFlip(p=0.5)])"
    assert repr(data.default_augmentation("cifar100", jitter=0.2)) == \
        "Compose([RandomShift(max_shift=4), RandomHorizontalFlip(p=0.5), ColorJitter(brightness=0.2, contrast=0.2)])"


def test_uint8_batches_are_scaled_as_drawn_and_train_exactly_like_float32():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (60, 3, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 4, 60)
    floats = pixels.astype(np.float32) / 255
    xb, _ = next(iter(DataLoader(pixels, labels, 16, seed=0)))
    assert xb.dtype == np.float32 and xb.max() <= 1
    np.testing.assert_array_equal(as_float_images(pixels[:3]), floats[:3])

    def train(x):
        nc.manual_seed(0)
        model = nc.zoo.cifar_resnet(num_classes=4, input_size=8, width=2, blocks=1)
        trainer = nc.Trainer(model, optimizer=nc.optim.Adam(model, lr=1e-2), seed=0, progress=False)
        trainer.fit(x, labels, epochs=2, batch_size=16, augment=data.default_augmentation("cifar10", jitter=0.3))
        return model.state_dict(), trainer.evaluate(x, labels), trainer.predict(x[:5])

    (state8, result8, probs8), (state32, result32, probs32) = train(pixels), train(floats)
    assert all(np.array_equal(state8[key], state32[key]) for key in state8)
    assert result8 == result32
    np.testing.assert_array_equal(probs8, probs32)
