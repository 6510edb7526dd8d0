"""The training recipe that `numcnn train` and Python users share: settings, building, and a new
dataset or shape being one registry entry rather than edits across the code."""

import numpy as np
import pytest

import numcnn as nc
from numcnn import data, recipe, rundir
from numcnn.data.datasets import REGISTRY, DatasetInfo
from numcnn.errors import ConfigError, DataError


def test_settings_fill_the_defaults_and_make_names_canonical():
    config = recipe.settings({"model": "Simple_ConvNet", "dataset": "fashion_mnist", "optimizer": "AdamW",
                              "epochs": None})
    assert config == {**recipe.DEFAULTS, "model": "simple-convnet", "dataset": "fashion-mnist",
                      "optimizer": "adamw"}


@pytest.mark.parametrize("given, error, message", [
    ({"model": "resnet"}, ConfigError, "unknown model 'resnet'"),
    ({"dataset": "imagenet"}, DataError, "unknown dataset 'imagenet'"),
    ({"optimizer": "lbfgs"}, ConfigError, "unknown optimizer 'lbfgs'"),
    ({"schedule": "linear"}, ConfigError, "unknown schedule 'linear'"),
    ({"epochs": 0}, ConfigError, "epochs must be an int >= 1, got 0"),
    ({"batch_size": 2.5}, ConfigError, "batch_size must be an int >= 1, got 2.5"),
    ({"lr": 0.0}, ConfigError, "lr must be a number > 0, got 0.0"),
    ({"lr": float("nan")}, ConfigError, "lr must be a number > 0"),
    ({"weight_decay": -1e-4}, ConfigError, "weight_decay must be a number >= 0 or None"),
    ({"seed": True}, ConfigError, "seed must be an int >= 0, got True"),
    ({"augment": "yes"}, ConfigError, "augment must be True or False"),
    ({"epoch": 3}, ConfigError, "unknown settings ['epoch']"),
])
def test_bad_settings_are_refused_before_any_data_is_read(given, error, message):
    with pytest.raises(error) as caught:
        recipe.settings(given)
    assert message in str(caught.value)


def test_the_augmentation_follows_what_the_dataset_says_of_its_pictures():
    # Clothes survive a mirror, digits do not; shifts scale with the image side.
    assert repr(data.default_augmentation("fashion-mnist")) == \
        "Compose([RandomShift(max_shift=2), RandomHorizontalFlip(p=0.5)])"
    assert repr(data.default_augmentation("mnist")) == "RandomShift(max_shift=2)"


@pytest.fixture
def toy_dataset(monkeypatch):
    """A 3-channel 12x12 dataset of 5 classes, registered the way a new dataset would be."""
    def read(folder, info):
        rng = np.random.default_rng(0)
        y = np.arange(60) % 5
        x = rng.random((60, *info.shape), dtype=np.float32) * 0.3
        x[np.arange(60), y % 3, :, :] += 0.7  # the class shows in one channel's brightness
        return (x[:50], y[:50]), (x[50:], y[50:])

    info = DatasetInfo("toy", (3, 12, 12), tuple("abcde"), files=(), reader=read, mirror_invariant=True)
    monkeypatch.setitem(REGISTRY, "toy", info)
    return info


def test_a_new_dataset_is_one_registry_entry(toy_dataset, tmp_path):
    run = recipe.build({"dataset": "toy", "model": "lenet5", "epochs": 2, "batch_size": 10, "augment": True,
                        "data_dir": str(tmp_path)})
    assert run.model.input_shape == (3, 12, 12)
    assert run.model.forward(run.test[0]).shape == (10, 5)
    assert repr(run.augment) == "Compose([RandomShift(max_shift=1), RandomHorizontalFlip(p=0.5)])"
    history = run.fit(run.trainer())
    assert history["epoch"] == [1, 2]


def test_equal_settings_build_equal_runs_and_the_seed_matters():
    config = {"dataset": "sample", "model": "mlp", "limit": 100, "test_limit": 20, "epochs": 1, "batch_size": 50}
    runs = [recipe.build({**config, "seed": seed}) for seed in (0, 0, 1)]
    for run in runs:
        run.fit(run.trainer())
    first, again, other = (run.model.state_dict() for run in runs)
    assert all(np.array_equal(first[key], again[key]) for key in first)
    assert not all(np.array_equal(first[key], other[key]) for key in first)


def test_build_records_the_optimizers_own_weight_decay():
    run = recipe.build({"dataset": "sample", "model": "mlp", "optimizer": "adamw", "limit": 10, "test_limit": 10})
    assert run.config["weight_decay"] == run.optimizer.weight_decay == 1e-2
    assert isinstance(run.optimizer, nc.optim.AdamW)


def test_a_run_folder_with_a_checkpoint_is_never_overwritten_silently(tmp_path):
    (tmp_path / "checkpoint.npz").write_bytes(b"a run")
    with pytest.raises(ConfigError, match="already holds a run"):
        rundir.start(tmp_path)
    assert (tmp_path / "checkpoint.npz").read_bytes() == b"a run"
    rundir.start(tmp_path, overwrite=True)
    assert not (tmp_path / "checkpoint.npz").exists()


def test_val_fraction_holds_out_part_of_a_named_datasets_training_set():
    """Per class, the same part for the same seed; the test set is not read into the run."""
    (x, y), (x_test, _) = data.load("sample", dtype=None)
    loaded = recipe.load_data(recipe.settings({"dataset": "sample", "val_fraction": 0.25, "seed": 5}))
    (xt, yt), (xv, yv) = loaded.train, loaded.test
    assert len(xt) + len(xv) == len(x) and len(xv) == round(0.25 * len(x)) and len(yt) == len(xt)
    assert np.bincount(yv).tolist() == [len(xv) // 10] * 10  # 600 a class in the sample: 150 each held out
    rows = {row.tobytes() for row in x}
    assert all(row.tobytes() in rows for row in xv)  # drawn from the training set ...
    assert not ({row.tobytes() for row in xv} & {row.tobytes() for row in x_test})  # ... never the test set
    again = recipe.load_data(recipe.settings({"dataset": "sample", "val_fraction": 0.25, "seed": 5}))
    assert np.array_equal(again.test[0], xv)
    other = recipe.load_data(recipe.settings({"dataset": "sample", "val_fraction": 0.25, "seed": 6}))
    assert not np.array_equal(other.test[0], xv)
