"""Optimizers and schedules against torch.optim: the same parameters and gradients in both
libraries, a few steps, and the parameters (and state arrays) must agree to 1e-10 relative."""

from __future__ import annotations

import io
import json
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import numcnn as nc
from numcnn import optim
from numcnn.errors import ConfigError, ModelFileError, NumcnnError
from numcnn.layers.base import Layer


# -- a tiny fake model: two leaves in a container, names "0.weight", "0.bias", "1.weight", "1.bias" --

class Leaf(Layer):
    def __init__(self, shapes, rng, dtype):
        super().__init__()
        self.params = {key: rng.standard_normal(shape).astype(dtype) for key, shape in shapes.items()}


class Pair(Layer):
    def __init__(self, *leaves):
        super().__init__()
        self.leaves = leaves

    def children(self):
        return [(str(i), leaf) for i, leaf in enumerate(self.leaves)]


SHAPES = ({"weight": (3, 4), "bias": (3,)}, {"weight": (2, 3, 2, 2), "bias": (2,)})


def make_model(seed=0, dtype=np.float64, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return Pair(*(Leaf(s, rng, dtype) for s in shapes))


def set_grads(model, rng, scale=1.0):
    """Fresh gradient arrays, as backward() makes them; returns them by name for torch."""
    grads = {}
    for name, owner, key in model.named_parameters():
        param = owner.params[key]
        owner.grads[key] = grads[name] = (scale * rng.standard_normal(param.shape)).astype(param.dtype)
    return grads


TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}


def run_both(ours_cls, ours_kw, torch_cls, torch_kw, dtype=np.float64, steps=5, seed=0):
    """Run ``steps`` steps of our optimizer and torch's on identical parameters and gradients."""
    model = make_model(seed, dtype)
    tparams = {name: torch.tensor(owner.params[key].copy(), requires_grad=True)
               for name, owner, key in model.named_parameters()}
    opt = ours_cls(model, **ours_kw)
    topt = torch_cls(list(tparams.values()), foreach=False, **torch_kw)
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        for name, grad in set_grads(model, rng).items():
            tparams[name].grad = torch.tensor(grad.copy())
        opt.step()
        topt.step()
    return model, opt, tparams, topt


def assert_matches_torch(model, opt, tparams, topt, rtol=1e-10, atol=1e-12):
    for name, owner, key in model.named_parameters():
        ref = tparams[name]
        np.testing.assert_allclose(owner.params[key], ref.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"param {name}")
        # state arrays carry PyTorch's names, so they are compared too
        for state_name, array in opt.state[name].items():
            np.testing.assert_allclose(array, topt.state[ref][state_name].numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"{state_name}/{name}")


# -- hyper-parameter strategies: (our kwargs, torch kwargs) -----------------------------------------

lrs = st.floats(1e-4, 0.5)
decays = st.one_of(st.just(0.0), st.floats(1e-4, 0.1))
momenta = st.floats(0.0, 0.99)
betas = st.tuples(st.floats(0.0, 0.99), st.floats(0.0, 0.9999))
epss = st.floats(1e-10, 1e-3)


@st.composite
def sgd_settings(draw):
    kw = dict(lr=draw(lrs), momentum=draw(st.one_of(st.just(0.0), momenta)), weight_decay=draw(decays))
    if kw["momentum"] > 0 and draw(st.booleans()):
        kw["nesterov"] = True
    else:
        kw["dampening"] = draw(st.floats(0.0, 1.0))
    return kw, kw


@st.composite
def momentum_settings(draw):
    kw = dict(lr=draw(lrs), momentum=draw(st.floats(0.01, 0.99)), weight_decay=draw(decays))
    return kw, kw


@st.composite
def adagrad_settings(draw):
    kw = dict(lr=draw(lrs), eps=draw(epss), weight_decay=draw(decays),
              initial_accumulator_value=draw(st.floats(0.0, 1.0)), lr_decay=draw(st.floats(0.0, 0.5)))
    return kw, kw


@st.composite
def rmsprop_settings(draw):
    kw = dict(lr=draw(lrs), alpha=draw(st.floats(0.1, 0.999)), eps=draw(epss),
              momentum=draw(st.one_of(st.just(0.0), momenta)), centered=draw(st.booleans()),
              weight_decay=draw(decays))
    return kw, kw


@st.composite
def adam_settings(draw):
    kw = dict(lr=draw(lrs), betas=draw(betas), eps=draw(epss), weight_decay=draw(decays),
              amsgrad=draw(st.booleans()))
    return kw, kw


PARITY = {
    "sgd": (optim.SGD, torch.optim.SGD, sgd_settings(), {}),
    "momentum": (optim.Momentum, torch.optim.SGD, momentum_settings(), {}),
    "nesterov": (optim.Nesterov, torch.optim.SGD, momentum_settings(), {"nesterov": True}),
    "adagrad": (optim.AdaGrad, torch.optim.Adagrad, adagrad_settings(), {}),
    "rmsprop": (optim.RMSProp, torch.optim.RMSprop, rmsprop_settings(), {}),
    "adam": (optim.Adam, torch.optim.Adam, adam_settings(), {}),
    "adamw": (optim.AdamW, torch.optim.AdamW, adam_settings(), {}),
}


# torch.optim.SGD with the momentum our Momentum and Nesterov classes default to
DEFAULTS_IN_TORCH = {"momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9, "nesterov": True}}


@pytest.mark.parametrize("which", sorted(PARITY))
def test_defaults_match_torch(which):
    ours, theirs, _, _ = PARITY[which]
    assert_matches_torch(*run_both(ours, {}, theirs, DEFAULTS_IN_TORCH.get(which, {})))


def _parity_test(which):
    ours, theirs, settings, extra = PARITY[which]

    @given(settings, st.integers(0, 2**16))
    def check(kwargs, seed):
        ours_kw, torch_kw = kwargs
        assert_matches_torch(*run_both(ours, ours_kw, theirs, {**torch_kw, **extra}, seed=seed))

    return check


test_sgd_matches_torch = _parity_test("sgd")
test_momentum_matches_torch = _parity_test("momentum")
test_nesterov_matches_torch = _parity_test("nesterov")
test_adagrad_matches_torch = _parity_test("adagrad")
test_rmsprop_matches_torch = _parity_test("rmsprop")
test_adam_matches_torch = _parity_test("adam")
test_adamw_matches_torch = _parity_test("adamw")


# Settings that create every kind of state array, for the dtype and state-dict tests.
FULL = [
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    (optim.Momentum, {"lr": 0.1}),
    (optim.Nesterov, {"lr": 0.1, "weight_decay": 0.01}),
    (optim.AdaGrad, {"lr_decay": 0.1, "initial_accumulator_value": 0.1, "weight_decay": 0.01}),
    (optim.RMSProp, {"momentum": 0.5, "centered": True, "weight_decay": 0.01}),
    (optim.Adam, {"amsgrad": True, "weight_decay": 0.01}),
    (optim.AdamW, {"betas": [0.8, 0.99]}),
]
FULL_IDS = [cls.__name__ for cls, _ in FULL]
TORCH_OF = {optim.SGD: torch.optim.SGD, optim.AdaGrad: torch.optim.Adagrad, optim.RMSProp: torch.optim.RMSprop,
            optim.Adam: torch.optim.Adam, optim.AdamW: torch.optim.AdamW}


@pytest.mark.parametrize("cls, kwargs", FULL, ids=FULL_IDS)
def test_float32_stays_float32_in_place(cls, kwargs):
    model = make_model(dtype=np.float32)
    before = {name: owner.params[key] for name, owner, key in model.named_parameters()}
    opt = cls(model, **kwargs)
    rng = np.random.default_rng(1)
    for _ in range(5):
        grads = set_grads(model, rng)
        saved = {name: g.copy() for name, g in grads.items()}
        opt.step()
        for name in grads:  # the gradient arrays are read, never written
            np.testing.assert_array_equal(grads[name], saved[name])
    for name, owner, key in model.named_parameters():
        assert owner.params[key] is before[name], "the parameter array must be updated in place"
        assert owner.params[key].dtype == np.float32
        assert all(a.dtype == np.float32 for a in opt.state[name].values())
    # and the float32 trajectory is torch's float32 trajectory, to float32 precision
    if cls in TORCH_OF:
        assert_matches_torch(*run_both(cls, kwargs, TORCH_OF[cls], kwargs, dtype=np.float32),
                             rtol=1e-5, atol=1e-6)


def _roundtrip(sd):
    """Through JSON and a pickle-free .npz, as a checkpoint file would go."""
    hyper = json.loads(json.dumps(sd["hyper"]))
    buf = io.BytesIO()
    np.savez(buf, **sd["arrays"])
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return {"hyper": hyper, "arrays": arrays}


@pytest.mark.parametrize("cls, kwargs", FULL, ids=FULL_IDS)
def test_state_dict_round_trip_continues_identically(cls, kwargs):
    model_a = make_model()
    opt_a = cls(model_a, **kwargs)
    rng = np.random.default_rng(7)
    for _ in range(3):
        set_grads(model_a, rng)
        opt_a.step()
    sd = _roundtrip(opt_a.state_dict())
    assert sd["hyper"]["class"] == cls.__name__ and sd["hyper"]["step"] == 3
    assert all("/" in key for key in sd["arrays"])

    model_b = make_model(seed=99)  # other weights, copied over below
    for (_, owner_a, key), (_, owner_b, _) in zip(model_a.named_parameters(), model_b.named_parameters()):
        owner_b.params[key][...] = owner_a.params[key]
    opt_b = cls(model_b, lr=0.5)  # other hyper-parameters: the state dict restores them
    opt_b.load_state_dict(sd)
    assert opt_b.hyper_parameters() == opt_a.hyper_parameters() and opt_b.step_count == 3

    for _ in range(3):
        grads = set_grads(model_a, rng)
        for (_, owner, key), grad in zip(model_b.named_parameters(), grads.values()):
            owner.grads[key] = grad.copy()
        opt_a.step()
        opt_b.step()
    for (name, owner_a, key), (_, owner_b, _) in zip(model_a.named_parameters(), model_b.named_parameters()):
        np.testing.assert_array_equal(owner_a.params[key], owner_b.params[key], err_msg=name)


def test_state_dict_before_any_step_has_no_arrays():
    opt = optim.Adam(make_model())
    sd = opt.state_dict()
    assert sd["arrays"] == {} and sd["hyper"]["step"] == 0
    assert sd["hyper"] == {"class": "Adam", "step": 0, "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
                           "weight_decay": 0.0, "amsgrad": False}
    optim.Adam(make_model(), lr=0.1).load_state_dict(sd)


def _trained_adam():
    model = make_model()
    opt = optim.Adam(model)
    set_grads(model, np.random.default_rng(0))
    opt.step()
    return opt


def _without(d, key):
    return {k: v for k, v in d.items() if k != key}


BAD_STATE_DICTS = {
    "wrong shape": lambda sd: {**sd, "arrays": {**sd["arrays"], "exp_avg/0.weight": np.zeros((4, 3))}},
    "missing array": lambda sd: {**sd, "arrays": _without(sd["arrays"], "exp_avg_sq/1.bias")},
    "extra array": lambda sd: {**sd, "arrays": {**sd["arrays"], "momentum_buffer/0.bias": np.zeros(3)}},
    "integer array": lambda sd: {**sd, "arrays": {**sd["arrays"], "exp_avg/0.bias": np.zeros(3, int)}},
    "other class": lambda sd: {**sd, "hyper": {**sd["hyper"], "class": "SGD"}},
    "bad lr": lambda sd: {**sd, "hyper": {**sd["hyper"], "lr": -1.0}},
    "bad step": lambda sd: {**sd, "hyper": {**sd["hyper"], "step": -2}},
    "missing hyper": lambda sd: {**sd, "hyper": _without(sd["hyper"], "eps")},
    "extra hyper": lambda sd: {**sd, "hyper": {**sd["hyper"], "momentum": 0.9}},
    "not a dict": lambda sd: [sd],
}


@pytest.mark.parametrize("corrupt", sorted(BAD_STATE_DICTS))
def test_bad_state_dict_raises_model_file_error_and_changes_nothing(corrupt):
    sd = _trained_adam().state_dict()
    target = _trained_adam()
    target.lr = 0.5
    before = target.state_dict()
    with pytest.raises(ModelFileError, match="Adam.load_state_dict"):
        target.load_state_dict(BAD_STATE_DICTS[corrupt](sd))
    after = target.state_dict()
    assert after["hyper"] == before["hyper"]
    assert all(np.array_equal(after["arrays"][k], before["arrays"][k]) for k in before["arrays"])


def test_state_dict_for_a_model_of_other_shapes_is_refused():
    sd = _trained_adam().state_dict()
    other = make_model(shapes=({"weight": (4, 3), "bias": (4,)}, {"weight": (2, 3, 2, 2), "bias": (2,)}))
    with pytest.raises(ModelFileError, match=r"exp_avg/0\.weight.*\(3, 4\).*\(4, 3\)"):
        optim.Adam(other).load_state_dict(sd)
    assert issubclass(ModelFileError, ValueError)


def test_step_without_gradients_is_an_error_and_changes_nothing():
    model = make_model()
    opt = optim.SGD(model, lr=0.1)
    set_grads(model, np.random.default_rng(0))
    del model.leaves[1].grads["bias"]
    weight = model.leaves[0].params["weight"].copy()
    with pytest.raises(NumcnnError, match="'1.bias' has no gradient"):
        opt.step()
    np.testing.assert_array_equal(model.leaves[0].params["weight"], weight)
    assert opt.step_count == 0
    opt.zero_grad()
    assert all(np.all(owner.grads[key] == 0) for _, owner, key in model.named_parameters())


# -- hyper-parameter validation --------------------------------------------------------------------

BAD_HYPER = [
    (optim.SGD, {"lr": -0.1}, r"SGD: lr must be .*\[0, inf\).*-0\.1"),
    (optim.SGD, {"lr": math.nan}, "SGD: lr"),
    (optim.SGD, {"lr": "0.1"}, "SGD: lr.*'0.1'"),
    (optim.SGD, {"momentum": -0.5}, "SGD: momentum.*-0.5"),
    (optim.SGD, {"dampening": 1.5}, r"SGD: dampening.*\[0, 1\].*1\.5"),
    (optim.SGD, {"nesterov": True}, "SGD: nesterov needs momentum > 0"),
    (optim.SGD, {"momentum": 0.9, "dampening": 0.1, "nesterov": True}, "dampening = 0"),
    (optim.SGD, {"weight_decay": -1e-4}, "SGD: weight_decay"),
    (optim.Momentum, {"momentum": -0.9}, "Momentum: momentum"),
    (optim.Nesterov, {"momentum": 0.0}, "Nesterov: nesterov needs momentum > 0"),
    (optim.AdaGrad, {"eps": 0.0}, r"AdaGrad: eps .*\(0, inf\)"),
    (optim.AdaGrad, {"lr_decay": -1}, "AdaGrad: lr_decay"),
    (optim.AdaGrad, {"initial_accumulator_value": -1}, "AdaGrad: initial_accumulator_value"),
    (optim.RMSProp, {"alpha": 1.0}, r"RMSProp: alpha .*\[0, 1\).*1\.0"),
    (optim.RMSProp, {"momentum": -0.1}, "RMSProp: momentum"),
    (optim.RMSProp, {"centered": "yes"}, "RMSProp: centered must be True or False"),
    (optim.Adam, {"betas": (1.0, 0.999)}, r"Adam: betas\[0\] .*\[0, 1\).*1\.0"),
    (optim.Adam, {"betas": (0.9, -0.1)}, r"Adam: betas\[1\]"),
    (optim.Adam, {"betas": (0.9,)}, "Adam: betas must be a pair"),
    (optim.Adam, {"eps": -1e-8}, "Adam: eps"),
    (optim.AdamW, {"weight_decay": -0.01}, "AdamW: weight_decay"),
    (optim.AdamW, {"lr": math.inf}, "AdamW: lr"),
]


@pytest.mark.parametrize("cls, kwargs, message", BAD_HYPER)
def test_bad_hyper_parameters_raise_config_error(cls, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        cls(make_model(), **kwargs)


def test_bad_models_raise_config_error():
    with pytest.raises(ConfigError, match="Adam: expected a numcnn model"):
        optim.Adam([np.zeros(3)])
    with pytest.raises(ConfigError, match="no trainable parameters"):
        optim.Adam(Pair())


def test_registry():
    model = make_model()
    assert optim.Adagrad is optim.AdaGrad and optim.RMSprop is optim.RMSProp
    assert set(optim.OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}
    opt = optim.get_optimizer("AdamW", model, lr=0.01)
    assert type(opt) is optim.AdamW and opt.lr == 0.01 and opt.weight_decay == 1e-2
    with pytest.raises(ConfigError, match="unknown optimizer 'adamx'; known: adagrad, adam, adamw"):
        optim.get_optimizer("adamx", model)
    with pytest.raises(ConfigError, match=r"Adam: unknown argument\(s\) \['momentum'\]"):
        optim.get_optimizer("adam", model, momentum=0.9)
    assert "Adam(lr=0.001, betas=(0.9, 0.999)" in repr(optim.Adam(model))


# -- learning-rate schedules -----------------------------------------------------------------------

def lrs_of(schedule, epochs):
    out = [schedule.optimizer.lr]
    for _ in range(epochs):
        schedule.step()
        assert schedule.get_lr() == schedule.last_lr == schedule.optimizer.lr
        out.append(schedule.optimizer.lr)
    return out


def torch_lrs_of(make, base_lr, epochs):
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = make(topt)
    out = [topt.param_groups[0]["lr"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):
            topt.step()
            sched.step()
            out.append(topt.param_groups[0]["lr"])
    return out


def assert_same_lrs(ours, theirs):
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)


@given(st.integers(1, 5), st.floats(0.05, 0.95), st.floats(1e-3, 1.0))
def test_step_lr_matches_torch(step_size, gamma, base_lr):
    ours = optim.StepLR(optim.SGD(make_model(), lr=base_lr), step_size, gamma)
    assert_same_lrs(lrs_of(ours, 16),
                    torch_lrs_of(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma), base_lr, 16))


@given(st.integers(1, 10), st.one_of(st.just(0.0), st.floats(1e-5, 1e-2)), st.floats(0.02, 1.0))
def test_cosine_matches_torch_including_past_t_max(T_max, eta_min, base_lr):
    ours = optim.CosineAnnealingLR(optim.Adam(make_model(), lr=base_lr), T_max, eta_min)
    theirs = torch_lrs_of(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max, eta_min),
                          base_lr, 3 * T_max)
    assert_same_lrs(lrs_of(ours, 3 * T_max), theirs)


@given(st.integers(1, 8), st.floats(0.01, 1.0))
def test_linear_warmup_matches_torch_linear_lr(warmup_steps, start_factor):
    ours = optim.LinearWarmup(optim.SGD(make_model(), lr=0.1), warmup_steps, start_factor)
    theirs = torch_lrs_of(lambda o: torch.optim.lr_scheduler.LinearLR(
        o, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps), 0.1, warmup_steps + 5)
    assert_same_lrs(lrs_of(ours, warmup_steps + 5), theirs)


@given(st.integers(1, 6), st.integers(1, 12), st.one_of(st.just(0.0), st.floats(1e-5, 1e-3)),
       st.floats(0.01, 1.0))
def test_warmup_cosine_matches_torch_sequential_lr(warmup_steps, cosine_steps, eta_min, start_factor):
    total = warmup_steps + cosine_steps

    def make(o):
        warm = torch.optim.lr_scheduler.LinearLR(o, start_factor=start_factor, total_iters=warmup_steps)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=cosine_steps, eta_min=eta_min)
        return torch.optim.lr_scheduler.SequentialLR(o, [warm, cos], milestones=[warmup_steps])

    ours = optim.WarmupCosine(optim.SGD(make_model(), lr=0.1), warmup_steps, total, eta_min, start_factor)
    assert_same_lrs(lrs_of(ours, total), torch_lrs_of(make, 0.1, total))
    assert lrs_of(ours, 3) == [eta_min] * 4  # held at eta_min after total_steps


def test_warmup_cosine_without_warmup_is_cosine():
    a = optim.WarmupCosine(optim.SGD(make_model(), lr=0.1), 0, 10)
    b = optim.CosineAnnealingLR(optim.SGD(make_model(), lr=0.1), 10)
    assert lrs_of(a, 10) == lrs_of(b, 10)


@pytest.mark.parametrize("make", [
    lambda o: optim.StepLR(o, 2, 0.5),
    lambda o: optim.CosineAnnealingLR(o, 7, 1e-4),
    lambda o: optim.LinearWarmup(o, 4),
    lambda o: optim.WarmupCosine(o, 3, 10, eta_min=1e-4, start_factor=0.1),
], ids=["step", "cosine", "warmup", "warmup_cosine"])
def test_schedule_state_dict_round_trip(make):
    first = make(optim.SGD(make_model(), lr=0.1))
    lrs_of(first, 4)
    sd = json.loads(json.dumps(first.state_dict()))
    second = make(optim.SGD(make_model(), lr=0.1))
    second.load_state_dict(sd)
    assert second.last_epoch == 4 and second.optimizer.lr == first.optimizer.lr
    assert lrs_of(second, 6) == lrs_of(first, 6)

    with pytest.raises(ModelFileError, match="saved by 'Other'"):
        second.load_state_dict({**sd, "class": "Other"})
    with pytest.raises(ModelFileError, match="last_epoch"):
        second.load_state_dict({**sd, "last_epoch": -1})
    with pytest.raises(ModelFileError, match="missing"):
        second.load_state_dict(_without(sd, "base_lr"))
    with pytest.raises(ModelFileError, match="base_lr"):
        second.load_state_dict({**sd, "base_lr": -1.0})


BAD_SCHEDULES = [
    (lambda o: optim.StepLR(o, 0), "StepLR: step_size must be an integer >= 1, got 0"),
    (lambda o: optim.StepLR(o, 1.5), "StepLR: step_size"),
    (lambda o: optim.StepLR(o, 2, gamma=0.0), "StepLR: gamma"),
    (lambda o: optim.CosineAnnealingLR(o, 0), "CosineAnnealingLR: T_max"),
    (lambda o: optim.CosineAnnealingLR(o, 5, eta_min=-1.0), "CosineAnnealingLR: eta_min"),
    (lambda o: optim.LinearWarmup(o, 3, start_factor=1.5), "LinearWarmup: start_factor"),
    (lambda o: optim.WarmupCosine(o, 5, 5), "WarmupCosine: total_steps must be an integer >= 6"),
    (lambda o: optim.StepLR([], 2), "StepLR: expected an optimizer"),
]


@pytest.mark.parametrize("make, message", BAD_SCHEDULES)
def test_bad_schedule_arguments_raise_config_error(make, message):
    with pytest.raises(ConfigError, match=message):
        make(optim.SGD(make_model(), lr=0.1))


def test_schedule_registry():
    opt = optim.SGD(make_model(), lr=0.1)
    assert set(optim.SCHEDULES) == {"step", "cosine", "warmup", "warmup_cosine"}
    sched = optim.get_schedule("cosine", opt, T_max=4)
    assert isinstance(sched, optim.CosineAnnealingLR) and sched.base_lr == 0.1
    with pytest.raises(ConfigError, match="unknown schedule 'exp'; known: cosine, step"):
        optim.get_schedule("exp", opt)
    with pytest.raises(ConfigError, match=r"missing required \['step_size'\]"):
        optim.get_schedule("step", opt)


# -- optimizers actually optimise ------------------------------------------------------------------

def _quadratic(model, target, scales):
    """loss = 1/2 sum(scales * (w - target)^2); sets the gradient and returns the loss."""
    leaf = model.leaves[0]
    diff = leaf.params["weight"] - target
    leaf.grads["weight"] = scales * diff
    return 0.5 * float(np.sum(scales * diff ** 2))


@pytest.mark.parametrize("name, kwargs", [
    ("adam", {"lr": 0.05}), ("adamw", {"lr": 0.05, "weight_decay": 0.0}), ("sgd", {"lr": 0.1}),
    ("momentum", {"lr": 0.05}), ("nesterov", {"lr": 0.05}), ("adagrad", {"lr": 0.5}), ("rmsprop", {"lr": 0.02}),
])
def test_optimizers_minimise_an_ill_conditioned_quadratic(name, kwargs):
    rng = np.random.default_rng(3)
    model = Pair(Leaf({"weight": (20,)}, rng, np.float64))
    target, scales = rng.standard_normal(20), np.geomspace(0.5, 5.0, 20)
    opt = optim.get_optimizer(name, model, **kwargs)
    first = _quadratic(model, target, scales)
    losses = []
    for _ in range(300):
        opt.step()
        losses.append(_quadratic(model, target, scales))
    assert losses[-1] < 1e-3 * first, f"{name}: loss {first:.3g} -> {losses[-1]:.3g}"
    if name == "adam":
        assert losses[9] < first


def test_adam_trains_a_real_model():
    rng = np.random.default_rng(0)
    model = nc.Sequential(nc.Linear(3, 8, dtype=np.float64), nc.Tanh(), nc.Linear(8, 1, dtype=np.float64))
    for _, owner, key in model.named_parameters():
        owner.params[key][...] = 0.5 * rng.standard_normal(owner.params[key].shape)
    x = rng.standard_normal((64, 3))
    y = np.sin(x @ np.array([[1.0], [-2.0], [0.5]]))
    loss_fn = nc.MSELoss()
    opt = optim.Adam(model, lr=0.02)
    schedule = optim.CosineAnnealingLR(opt, T_max=200)
    losses = []
    for _ in range(200):
        opt.zero_grad()
        losses.append(loss_fn.forward(model.forward(x), y))
        model.backward(loss_fn.backward())
        opt.step()
        schedule.step()
    assert losses[-1] < 0.2 * losses[0]
