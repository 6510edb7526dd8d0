"""Learning-rate schedules: StepLR, CosineAnnealingLR, LinearWarmup, WarmupCosine (see ``numcnn.optim``)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any


from ..errors import ConfigError, ModelFileError
from .checks import check_kwargs, constructor_args, integer, lookup, number


# -- learning-rate schedules -----------------------------------------------------------------------

class LRSchedule:
    """Base class: sets ``optimizer.lr`` from a closed form ``lr_at(t)`` of the step count ``t``.

    ``t`` counts ``step()`` calls: once per epoch by default, or once per iteration if the
    trainer steps it so; the schedule does not care which. ``base_lr`` is the optimizer's
    ``lr`` when the schedule is built; construction already applies ``lr_at(0)``. Because the
    closed form rewrites ``optimizer.lr`` at every step, changes made to it by hand are not kept.
    """

    def __init__(self, optimizer: Any):
        if not hasattr(optimizer, "lr"):
            raise ConfigError(f"{self.name}: expected an optimizer with an 'lr' attribute, "
                              f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = number(self.name, "the optimizer's lr", optimizer.lr, 0)
        self.last_epoch = 0
        self.last_lr = self.base_lr

    @property
    def name(self) -> str:
        """The class name, used in error messages and state dicts."""
        return type(self).__name__

    def lr_at(self, t: int) -> float:
        """The learning rate after ``t`` calls of ``step()``."""
        raise NotImplementedError

    def _apply(self) -> None:
        self.last_lr = self.lr_at(self.last_epoch)
        self.optimizer.lr = self.last_lr

    def step(self) -> None:
        """Advance one epoch (or iteration) and set the optimizer's learning rate."""
        self.last_epoch += 1
        self._apply()

    def get_lr(self) -> float:
        """The learning rate now in effect (same as ``last_lr``)."""
        return self.last_lr

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable: class, step count, base lr, last lr and the constructor arguments."""
        config = {arg: getattr(self, arg) for arg in constructor_args(type(self))}
        return {"class": self.name, "last_epoch": self.last_epoch, "base_lr": self.base_lr,
                "last_lr": self.last_lr, **config}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore from ``state_dict()`` output and set the optimizer's lr to match.

        Another schedule class, missing or extra keys, or invalid values raise ModelFileError.
        """
        where = f"{self.name}.load_state_dict"
        if not isinstance(sd, dict):
            raise ModelFileError(f"{where}: expected a dict, got {type(sd).__name__}")
        if sd.get("class") != self.name:
            raise ModelFileError(f"{where}: the state was saved by {sd.get('class')!r}, not {self.name!r}")
        expected = {"class", "last_epoch", "base_lr", "last_lr", *constructor_args(type(self))}
        if set(sd) != expected:
            raise ModelFileError(f"{where}: keys missing {sorted(expected - set(sd))}, "
                                 f"unexpected {sorted(set(sd) - expected)}")
        config = {arg: sd[arg] for arg in constructor_args(type(self))}
        try:
            # building one on a stand-in optimizer validates everything without touching ours
            base_lr = number(self.name, "base_lr", sd["base_lr"], 0)
            last_epoch = integer(self.name, "last_epoch", sd["last_epoch"], 0)
            fresh = type(self)(SimpleNamespace(lr=base_lr), **config)
        except ConfigError as exc:
            raise ModelFileError(f"{where}: invalid saved value: {exc}") from None
        for arg in config:
            setattr(self, arg, getattr(fresh, arg))
        self.base_lr = fresh.base_lr
        self.last_epoch = last_epoch
        self._apply()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in constructor_args(type(self)))
        return f"{self.name}({args}, last_epoch={self.last_epoch}, lr={self.last_lr:g})"


class StepLR(LRSchedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps, as ``torch.optim.lr_scheduler.StepLR``.

    lr_t = base_lr * gamma ** (t // step_size)
    """

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = integer(self.name, "step_size", step_size, 1)
        self.gamma = number(self.name, "gamma", gamma, 0, low_open=True)
        self._apply()

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(LRSchedule):
    """Cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` steps, as PyTorch's CosineAnnealingLR.

    lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    Past ``T_max`` the cosine rises again (period 2 * T_max), as in PyTorch.
    """

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.T_max = integer(self.name, "T_max", T_max, 1)
        self.eta_min = number(self.name, "eta_min", eta_min, 0)
        self._apply()

    def lr_at(self, t):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearWarmup(LRSchedule):
    """Ramp linearly from ``start_factor * base_lr`` to ``base_lr`` over ``warmup_steps``, then hold.

    lr_t = base_lr * (start_factor + (1 - start_factor) * min(t, warmup_steps) / warmup_steps)

    The same values as ``torch.optim.lr_scheduler.LinearLR(start_factor, end_factor=1,
    total_iters=warmup_steps)``, whose default start factor it shares.
    """

    def __init__(self, optimizer: Any, warmup_steps: int, start_factor: float = 1 / 3):
        super().__init__(optimizer)
        self.warmup_steps = integer(self.name, "warmup_steps", warmup_steps, 1)
        self.start_factor = number(self.name, "start_factor", start_factor, 0, 1)
        self._apply()

    def lr_at(self, t):
        progress = min(t, self.warmup_steps) / self.warmup_steps
        return self.base_lr * (self.start_factor + (1 - self.start_factor) * progress)


class WarmupCosine(LRSchedule):
    """Linear warm-up for ``warmup_steps``, then a cosine down to ``eta_min`` at ``total_steps``.

    t <  W      : lr_t = base_lr * (start_factor + (1 - start_factor) * t / W)
    W <= t <= T : lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * (t - W) / (T - W))) / 2
    t >  T      : lr_t = eta_min

    Up to ``total_steps`` the same values as PyTorch's ``SequentialLR([LinearLR(start_factor,
    total_iters=W), CosineAnnealingLR(T_max=T - W, eta_min)], milestones=[W])``; after it, the
    rate stays at ``eta_min`` instead of rising again. ``warmup_steps=0`` gives a plain cosine.
    """

    def __init__(self, optimizer: Any, warmup_steps: int, total_steps: int, eta_min: float = 0.0,
                 start_factor: float = 1 / 3):
        super().__init__(optimizer)
        self.warmup_steps = integer(self.name, "warmup_steps", warmup_steps, 0)
        self.total_steps = integer(self.name, "total_steps", total_steps, self.warmup_steps + 1)
        self.eta_min = number(self.name, "eta_min", eta_min, 0)
        self.start_factor = number(self.name, "start_factor", start_factor, 0, 1)
        self._apply()

    def lr_at(self, t):
        warm, total = self.warmup_steps, self.total_steps
        if t < warm:
            return self.base_lr * (self.start_factor + (1 - self.start_factor) * t / warm)
        if t >= total:
            return self.eta_min
        progress = (t - warm) / (total - warm)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2


SCHEDULES: dict[str, type[LRSchedule]] = {
    "step": StepLR, "cosine": CosineAnnealingLR, "warmup": LinearWarmup, "warmup_cosine": WarmupCosine,
}


def get_schedule(name: str, optimizer: Any, **kwargs: Any) -> LRSchedule:
    """Build a schedule by its registry name (case-insensitive), e.g. ``get_schedule("cosine", opt, T_max=10)``.

    Unknown names and unknown keyword arguments raise ConfigError listing what is accepted.
    """
    cls = lookup("schedule", SCHEDULES, name)
    check_kwargs(cls, kwargs)
    return cls(optimizer, **kwargs)

