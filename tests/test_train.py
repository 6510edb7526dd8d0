"""The Trainer: determinism, history, evaluation, prediction, divergence, and a real smoke run."""

import json

import numpy as np
import pytest

import numcnn as nc
from numcnn import data, optim, zoo
from numcnn.checkpoint import read_checkpoint
from numcnn.errors import ConfigError, DivergenceError
from numcnn.train import Trainer, predict_proba


@pytest.fixture(scope="module")
def sample():
    return data.load("sample")


def tiny_net(seed=0):
    """Conv, batch norm, pooling and dropout: every kind of state a checkpoint must carry."""
    nc.manual_seed(seed)
    return nc.Sequential(nc.Conv2d(1, 4, 3), nc.BatchNorm2d(4), nc.ReLU(), nc.MaxPool2d(2), nc.Dropout(0.3),
                         nc.Linear(4 * 13 * 13, 10), input_shape=(1, 28, 28))


def make_trainer(seed=0, out_dir=None, model_seed=0, lr=1e-2, **kw):
    model = tiny_net(model_seed)
    opt = optim.Adam(model, lr=lr)
    return Trainer(model, nc.SoftmaxCrossEntropy(), opt, optim.StepLR(opt, step_size=1, gamma=0.5),
                   seed=seed, out_dir=out_dir, progress=False, **kw)


def weights(model):
    return model.state_dict()


def assert_same_weights(a, b):
    sa, sb = weights(a), weights(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert np.array_equal(sa[key], sb[key]), key


def test_same_seed_same_weights_different_seed_different(sample):
    (x, y), _ = sample
    x, y = x[:200], y[:200]
    runs = []
    for seed in (0, 0, 1):
        trainer = make_trainer(seed=seed)
        trainer.fit(x, y, epochs=2, batch_size=32, augment=data.RandomShift(2))
        runs.append(trainer)
    assert_same_weights(runs[0].model, runs[1].model)
    assert runs[0].history["loss"] == runs[1].history["loss"]
    assert not np.array_equal(weights(runs[0].model)["5.weight"], weights(runs[2].model)["5.weight"])


def test_history_has_one_row_per_epoch(sample):
    (x, y), (xt, yt) = sample
    trainer = make_trainer()
    history = trainer.fit(x[:100], y[:100], epochs=2, batch_size=50, validation=(xt[:50], yt[:50]))
    assert set(history) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert history["epoch"] == [1, 2]
    assert history["lr"] == [1e-2, 5e-3]  # StepLR halves it after every epoch
    assert all(0 <= a <= 1 for a in history["accuracy"] + history["val_accuracy"])
    assert history["val_loss"][1] == pytest.approx(trainer.evaluate(xt[:50], yt[:50])["loss"])
    assert trainer.epoch == 2
    # fit counts epochs in total: asking for 2 again trains nothing, asking for 3 trains one more
    trainer.fit(x[:100], y[:100], epochs=2, batch_size=50)
    assert trainer.history["epoch"] == [1, 2]
    trainer.fit(x[:100], y[:100], epochs=3, batch_size=50)
    assert trainer.history["epoch"] == [1, 2, 3] and trainer.history["val_loss"][2] is None


def test_evaluate_and_predict_run_in_eval_mode_in_batches(sample):
    _, (xt, yt) = sample
    trainer = make_trainer()
    model = trainer.model
    model.train()
    whole = trainer.evaluate(xt[:90], yt[:90], batch_size=1000)
    chunked = trainer.evaluate(xt[:90], yt[:90], batch_size=7)
    assert model.training, "evaluate must restore train mode"
    assert chunked["accuracy"] == whole["accuracy"]
    assert chunked["loss"] == pytest.approx(whole["loss"], rel=1e-5)
    probs = trainer.predict(xt[:90], batch_size=13)
    assert probs.shape == (90, 10) and model.training
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(probs, predict_proba(model, xt[:90], batch_size=90), rtol=1e-5, atol=1e-7)
    assert whole["accuracy"] == np.mean(probs.argmax(axis=1) == yt[:90])


def test_bad_arguments(sample):
    (x, y), _ = sample
    trainer = make_trainer()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError):
            trainer.fit(x[:10], y[:10], epochs=bad)
    with pytest.raises(ConfigError):
        trainer.fit(x[:10], y[:10], epochs=1, batch_size=0)
    with pytest.raises(nc.DataError):
        trainer.fit(x[:10], y[:9], epochs=1)
    other = tiny_net()
    with pytest.raises(ConfigError, match="another model"):
        Trainer(other, nc.SoftmaxCrossEntropy(), optim.SGD(tiny_net(), lr=0.1))


def test_a_nan_loss_raises_divergence_and_keeps_the_last_good_checkpoint(sample, tmp_path, monkeypatch):
    (x, y), _ = sample
    trainer = make_trainer(out_dir=tmp_path)
    trainer.fit(x[:64], y[:64], epochs=1, batch_size=32)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    history_before = (tmp_path / "history.json").read_text()
    calls = {"n": 0}
    real_forward = trainer.loss.forward

    def poisoned(logits, target):
        calls["n"] += 1
        return float("nan") if calls["n"] == 2 else real_forward(logits, target)

    monkeypatch.setattr(trainer.loss, "forward", poisoned)
    with pytest.raises(DivergenceError, match=r"diverged at epoch 2, step 2 \(loss nan\); last good checkpoint") as info:
        trainer.fit(x[:64], y[:64], epochs=3, batch_size=32)
    assert (info.value.epoch, info.value.step) == (2, 2)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert (tmp_path / "history.json").read_text() == history_before
    assert read_checkpoint(tmp_path)[1]["epoch"] == 1


def test_a_huge_learning_rate_diverges(sample):
    # The stable cross-entropy stays finite for logits up to ~1e38, so lr=1e6 only makes the loss
    # astronomically large; it takes a step that overflows float32 to make it NaN.
    (x, y), _ = sample
    nc.manual_seed(0)
    model = zoo.mlp(hidden=())
    trainer = Trainer(model, nc.SoftmaxCrossEntropy(), optim.SGD(model, lr=1e38), progress=False)
    with pytest.raises(DivergenceError, match="diverged at epoch 1, step"):
        trainer.fit(x[:600], y[:600], epochs=1, batch_size=20)


def test_progress_bar_and_log_lines(sample, capsys):
    (x, y), _ = sample
    lines = []
    model = tiny_net()
    trainer = Trainer(model, nc.SoftmaxCrossEntropy(), optim.SGD(model, lr=0.05), progress=True, log=lines.append)
    trainer.fit(x[:40], y[:40], epochs=1, batch_size=20)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "img_s" in err  # tqdm on stderr
    assert len(lines) == 1 and lines[0].startswith("epoch 1/1  loss ")


def test_simple_convnet_learns_the_sample_in_one_epoch(sample, tmp_path):
    (x, y), (xt, yt) = sample
    nc.manual_seed(0)
    model = zoo.simple_convnet()
    trainer = Trainer(model, nc.SoftmaxCrossEntropy(), optim.Adam(model, lr=1e-3), out_dir=tmp_path, progress=False)
    trainer.fit(x[:1000], y[:1000], epochs=1, batch_size=25)
    result = trainer.evaluate(xt[:500], yt[:500])
    assert result["accuracy"] > 0.6, result  # chance is 0.1
    saved = nc.load(tmp_path / "model.npz")
    assert_same_weights(saved, model)
    assert json.loads((tmp_path / "history.json").read_text())["epoch"] == [1]


def test_a_new_run_never_replaces_a_saved_one(sample, tmp_path):
    (x, y), _ = sample
    x, y = x[:40], y[:40]
    out = tmp_path / "run"
    make_trainer(out_dir=out).fit(x, y, epochs=2, batch_size=20)
    saved = {name: (out / name).read_bytes() for name in ("checkpoint.npz", "model.npz", "history.json")}
    with pytest.raises(ConfigError, match=r"already holds a run; continue it with Trainer.resume\(.*overwrite=True"):
        make_trainer(out_dir=out, model_seed=1).fit(x, y, epochs=1, batch_size=20)
    with pytest.raises(ConfigError, match="already holds a run"):  # the recipe's trainer too
        run = nc.recipe.build({"model": "simple-convnet", "dataset": "sample", "epochs": 1, "limit": 40})
        run.fit(run.trainer(out))
    assert {name: (out / name).read_bytes() for name in saved} == saved
    # Continuing it is not a new run: from the trainer that wrote it, from resume(), or with resume=True.
    Trainer.resume(out, progress=False).fit(x, y, epochs=3, batch_size=20)
    make_trainer(out_dir=out).fit(x, y, epochs=4, batch_size=20, resume=True)
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2, 3, 4]
    # overwrite=True starts over: the old checkpoints go, the new run's history is its own.
    make_trainer(out_dir=out, overwrite=True).fit(x, y, epochs=1, batch_size=20)
    assert json.loads((out / "history.json").read_text())["epoch"] == [1]
    assert not (out / "checkpoint.previous.npz").exists()


def test_a_run_is_claimed_only_once_its_inputs_pass_and_only_for_its_own_folder(sample, tmp_path):
    (x, y), _ = sample
    x, y = x[:40], y[:40]
    out = tmp_path / "run"
    make_trainer(out_dir=out).fit(x, y, epochs=2, batch_size=20)
    saved = sorted(p.name for p in out.iterdir())
    # overwrite=True, but the fit fails on its data first: the old run keeps its checkpoints.
    with pytest.raises(nc.errors.DataError):
        make_trainer(out_dir=out, overwrite=True).fit(x, y[:7], epochs=1, batch_size=20)
    assert sorted(p.name for p in out.iterdir()) == saved
    # resume=True with nothing to resume from is a new run: refused over a saved model and history.
    for name in ("checkpoint.npz", "checkpoint.previous.npz"):
        (out / name).unlink()
    with pytest.raises(ConfigError, match="already holds a run"):
        make_trainer(out_dir=out).fit(x, y, epochs=1, batch_size=20, resume=True)
    # A trainer pointed at another folder claims that one too.
    trainer = make_trainer(out_dir=tmp_path / "other")
    trainer.fit(x, y, epochs=1, batch_size=20)
    trainer.out_dir = out
    with pytest.raises(ConfigError, match="already holds a run"):
        trainer.fit(x, y, epochs=2, batch_size=20)
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]
