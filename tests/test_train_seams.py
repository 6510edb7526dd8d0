"""The Trainer's seams: hooks between backward and step, every gradient in one fixed order,
replaceable random generators, and resumes that refuse other settings than the run's."""

import numpy as np

from numcnn import functional as F
import pytest

import numcnn as nc
from numcnn import data
from numcnn.errors import ResumeMismatchError
from numcnn.train import Hook, Trainer

from test_train import make_trainer, tiny_net


@pytest.fixture(scope="module")
def small():
    (x, y), _ = data.load("sample")
    return x[:96], y[:96]


def test_gradients_come_in_named_parameters_order_and_are_the_arrays_the_optimizer_reads():
    model = tiny_net()
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    model.backward(np.ones_like(model.forward(x)))
    names = [name for name, _ in model.gradients()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias"]
    for (name, grad), (_, owner, key) in zip(model.gradients(), model.named_parameters()):
        assert grad is owner.grads[key], name
        assert grad.shape == owner.params[key].shape


class Recorder(Hook):
    """Halves every gradient in place (as an all-reduce over two equal ranks would average),
    and notes when it ran."""

    def __init__(self):
        self.events = []

    def after_backward(self, trainer):
        for _, grad in trainer.model.gradients():
            grad *= 0.5
        self.events.append(("backward", trainer.optimizer.state_dict()["hyper"]["step"]))

    def after_epoch(self, trainer):
        self.events.append(("epoch", trainer.epoch))


def test_hooks_run_between_backward_and_step_and_what_they_change_is_what_the_optimizer_applies(small):
    x, y = small
    recorder = Recorder()
    make_trainer(hooks=[recorder]).fit(x, y, 2, batch_size=32)
    # Three batches an epoch; each hook call sees the optimizer before its step.
    assert recorder.events == [("backward", 0), ("backward", 1), ("backward", 2), ("epoch", 1),
                               ("backward", 3), ("backward", 4), ("backward", 5), ("epoch", 2)]

    # SGD without momentum: halving every gradient is the same as halving the learning rate.
    def sgd_run(lr, hooks):
        model = tiny_net()
        trainer = Trainer(model, None, nc.optim.SGD(model, lr=lr), progress=False, hooks=hooks)
        trainer.fit(x, y, 1, batch_size=32, shuffle=False)
        return model.state_dict()

    halved, plain = sgd_run(0.1, [Recorder()]), sgd_run(0.05, [])
    for key in plain:
        np.testing.assert_allclose(halved[key], plain[key], rtol=1e-6, atol=1e-7, err_msg=key)
    unhooked = sgd_run(0.1, [])
    assert not all(np.allclose(unhooked[key], plain[key]) for key in plain)


def test_hooks_must_be_hook_objects():
    with pytest.raises(nc.ConfigError, match="Hook"):
        make_trainer(hooks=[lambda trainer: None])


@pytest.mark.parametrize("changed, message", [
    (dict(batch_size=16), "batch_size 16 (the run used 32)"),
    (dict(shuffle=False), "shuffle False (the run used True)"),
    (dict(augment=data.RandomShift(3)), "augment 'RandomShift(max_shift=3)' (the run used 'RandomShift(max_shift=2)')"),
    (dict(augment=None), "augment None (the run used 'RandomShift(max_shift=2)')"),
])
def test_resuming_with_other_fit_settings_is_refused_naming_both_values(small, tmp_path, changed, message):
    x, y = small
    make_trainer(out_dir=tmp_path).fit(x, y, 1, batch_size=32, augment=data.RandomShift(2))
    settings = dict(batch_size=32, shuffle=True, augment=data.RandomShift(2)) | changed
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(ResumeMismatchError) as caught:
        make_trainer(out_dir=tmp_path).fit(x, y, 2, resume=True, **settings)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ResumeMismatchError):
        Trainer.resume(tmp_path, progress=False).fit(x, y, 2, **settings)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before, "a refused resume must not touch the run"


def test_resuming_with_the_same_settings_goes_on(small, tmp_path):
    x, y = small
    make_trainer(out_dir=tmp_path).fit(x, y, 1, batch_size=32, augment=data.RandomShift(2))
    resumed = Trainer.resume(tmp_path, progress=False)
    resumed.fit(x, y, 2, batch_size=32, augment=data.RandomShift(2))
    assert resumed.epoch == 2


def test_seed_takes_a_generator_factory_for_random_layers():
    model = tiny_net()
    made = []

    class Counting:
        def __init__(self, seed_sequence):
            made.append(seed_sequence)
            self.inner = np.random.default_rng(seed_sequence)

        def integers(self, high):
            return self.inner.integers(high)

    model.seed(7, generator=Counting)
    dropout = model[4]
    assert isinstance(dropout.rng, Counting) and len(made) == 1
    out = dropout.forward(np.ones((2, 50), np.float32))
    # one key per forward, from the factory's generator; the mask is that key's hash
    key = np.random.default_rng(np.random.SeedSequence(7).spawn(1)[0]).integers(2**63)
    expected_keep = np.array([splitmix64_uniform(int(key), i) for i in range(100)]).reshape(2, 50) >= 0.3
    np.testing.assert_array_equal(out != 0, expected_keep)


MASK64 = (1 << 64) - 1


def splitmix64(key: int, index: int) -> int:
    """The index-th output of SplitMix64 seeded with key (Steele, Lea and Flood 2014), written
    out here in Python integers, independently of numcnn's arrays."""
    z = (key + (index + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def splitmix64_uniform(key: int, index: int, bits: int = 24) -> float:
    """That output's top bits as a number in [0, 1)."""
    return (splitmix64(key, index) >> (64 - bits)) / 2**bits


def test_the_dropout_hash_is_splitmix64():
    # SplitMix64's first output for seed 0 is 0xE220A8397B1DCDAF (the published reference values).
    assert splitmix64(0, 0) == 0xE220A8397B1DCDAF
    key = 12345678901234567
    ours = F.hash_uniform((7, 11), key, np.float64)
    assert ours.tolist() == [[splitmix64_uniform(key, 11 * r + c, 53) for c in range(11)] for r in range(7)]
