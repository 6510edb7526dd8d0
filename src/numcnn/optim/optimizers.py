"""The optimizers: SGD, Momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW (see ``numcnn.optim``)."""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any, Iterable

import numpy as np

from ..backend import device_of, get_array_module, host_copy, is_array, to_device, to_numpy
from ..errors import ConfigError, ModelFileError, NumcnnError, ShapeError
from .checks import check_kwargs, constructor_args, flag, lookup, number


# -- the base class --------------------------------------------------------------------------------

class Optimizer:
    """Base class: finds parameters and gradients, keeps per-parameter state, saves it.

    A subclass validates its hyper-parameters in ``__init__``, names its state arrays in
    ``_state_names()`` and writes its update rule in ``_update(param, grad, state, lr)``, which
    changes ``param`` in place. The constructor's argument names are the hyper-parameter names
    saved in the state dict.

    Parameters
    ----------
    model : Layer
        A numcnn ``Layer`` (anything with ``named_parameters()`` and ``zero_grad()``).
    lr : float
        The learning rate, a public attribute that schedules rewrite.
    weight_decay : float, default 0.0
        L2 penalty coefficient (added to the gradient unless the subclass decouples it).
    """

    def __init__(self, model: Any, lr: float, weight_decay: float = 0.0):
        if not hasattr(model, "named_parameters"):
            raise ConfigError(f"{self.name}: expected a numcnn model (a Layer), got {type(model).__name__}")
        if next(iter(model.named_parameters()), None) is None:
            raise ConfigError(f"{self.name}: the model has no trainable parameters")
        self.model = model
        self.lr = number(self.name, "lr", lr, 0)
        self.weight_decay = number(self.name, "weight_decay", weight_decay, 0)
        self.step_count = 0
        # parameter name -> state name -> array, created on the parameter's first step
        self.state: dict[str, dict[str, np.ndarray]] = {}

    @property
    def name(self) -> str:
        """The class name, used in error messages and state dicts."""
        return type(self).__name__

    # -- what subclasses define ----------------------------------------------------------------
    def _state_names(self) -> tuple[str, ...]:
        """The state arrays each parameter holds after its first step, given the hyper-parameters."""
        return ()

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray],
                lr: float) -> None:
        raise NotImplementedError

    # -- training ------------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Set every gradient of the model to zeros (delegates to ``model.zero_grad()``)."""
        self.model.zero_grad()

    def step(self) -> None:
        """Update every parameter once from its current gradient.

        All gradients are checked before any parameter changes, so a missing or misshapen
        gradient leaves the model and the optimizer as they were.
        """
        lr = number(self.name, "lr", self.lr, 0)
        work = []
        for name, owner, key in self.model.named_parameters():
            param = owner.params[key]
            grad = owner.grads.get(key)
            if grad is None:
                raise NumcnnError(f"{self.name}.step(): parameter {name!r} has no gradient; "
                                  f"call backward() (or zero_grad()) before step()")
            if not is_array(grad):
                grad = np.asarray(grad)
            if grad.shape != param.shape:
                raise ShapeError(f"{self.name}.step(): gradient of {name!r} has shape {grad.shape}, "
                                 f"parameter has {param.shape}")
            # the update runs in the parameter's dtype; the gradient itself is never modified
            work.append((name, param, grad.astype(param.dtype, copy=False)))
        self.step_count += 1
        for name, param, grad in work:
            self._update(param, grad, self.state.setdefault(name, {}), lr)

    # -- saving --------------------------------------------------------------------------------
    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor's arguments as they are now (JSON-friendly: tuples become lists)."""
        values = {}
        for arg in constructor_args(type(self)):
            value = getattr(self, arg)
            values[arg] = list(value) if isinstance(value, tuple) else value
        return values

    def state_dict(self) -> dict[str, Any]:
        """``{"hyper": JSON-serialisable dict, "arrays": {"<state>/<param>": NumPy copy}}``
        (host arrays, whatever device the state lives on)."""
        hyper = {"class": self.name, "step": self.step_count, **self.hyper_parameters()}
        arrays = {f"{state_name}/{param_name}": host_copy(array)
                  for param_name, state in self.state.items()
                  for state_name, array in state.items()}
        return {"hyper": hyper, "arrays": arrays}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore hyper-parameters, step count and state from ``state_dict()`` output.

        Everything is checked before anything changes; any mismatch (another optimizer class,
        missing or extra keys, wrong shapes, invalid values) raises ModelFileError.
        """
        where = f"{self.name}.load_state_dict"
        if not isinstance(sd, dict) or not isinstance(sd.get("hyper"), dict) \
                or not isinstance(sd.get("arrays"), dict):
            raise ModelFileError(f"{where}: expected a dict with 'hyper' and 'arrays' dicts, "
                                 f"got {type(sd).__name__}")
        hyper, arrays = dict(sd["hyper"]), sd["arrays"]
        saved_class = hyper.pop("class", None)
        if saved_class != self.name:
            raise ModelFileError(f"{where}: the state was saved by {saved_class!r}, not {self.name!r}")
        step = hyper.pop("step", None)
        if isinstance(step, bool) or not isinstance(step, Integral) or step < 0:
            raise ModelFileError(f"{where}: 'step' must be an integer >= 0, got {step!r}")
        expected_hyper = set(constructor_args(type(self)))
        if set(hyper) != expected_hyper:
            raise ModelFileError(f"{where}: hyper-parameters missing {sorted(expected_hyper - set(hyper))}, "
                                 f"unexpected {sorted(set(hyper) - expected_hyper)}")
        try:
            # the constructor validates every value
            fresh = type(self)(self.model, **hyper)
        except ConfigError as exc:
            raise ModelFileError(f"{where}: invalid saved hyper-parameter: {exc}") from None

        params = {name: owner.params[key] for name, owner, key in self.model.named_parameters()}
        wanted = {f"{s}/{p}": p for p in params for s in fresh._state_names()} if step > 0 else {}
        missing, extra = sorted(set(wanted) - set(arrays)), sorted(set(arrays) - set(wanted))
        if missing or extra:
            raise ModelFileError(f"{where}: arrays missing {missing}, unexpected {extra}")
        state: dict[str, dict[str, np.ndarray]] = {}
        for key, param_name in wanted.items():
            array, param = to_numpy(arrays[key]), params[param_name]
            if array.shape != param.shape:
                raise ModelFileError(f"{where}: {key!r} has shape {array.shape}, "
                                     f"the model's {param_name!r} has {param.shape}")
            if not np.issubdtype(array.dtype, np.floating):
                raise ModelFileError(f"{where}: {key!r} has dtype {array.dtype}, expected floats")
            state.setdefault(param_name, {})[key.split("/", 1)[0]] = to_device(array.astype(param.dtype),
                                                                                device_of(param))

        for arg in expected_hyper:
            setattr(self, arg, getattr(fresh, arg))
        self.step_count = int(step)
        self.state = state

    def to(self, device: str) -> "Optimizer":
        """Move the per-parameter state (moments, velocities, ...) to device, as ``Layer.to``
        moves the parameters; call both, or let the Trainer do it. Returns self."""
        self.state = {name: {key: to_device(array, device) for key, array in state.items()}
                      for name, state in self.state.items()}
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in constructor_args(type(self)))
        return f"{self.name}({args})"


# -- the optimizers --------------------------------------------------------------------------------

class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    g <- g + weight_decay * p
    b <- g on the first step, else momentum * b + (1 - dampening) * g
    g <- g + momentum * b  (nesterov)   or   g <- b  (classical momentum)
    p <- p - lr * g
    """

    def __init__(self, model: Any, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(model, lr, weight_decay)
        self.momentum = number(self.name, "momentum", momentum, 0)
        self.dampening = number(self.name, "dampening", dampening, 0, 1)
        self.nesterov = flag(self.name, "nesterov", nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ConfigError(f"{self.name}: nesterov needs momentum > 0 and dampening = 0, "
                              f"got momentum={momentum!r}, dampening={dampening!r}")

    def _state_names(self):
        return ("momentum_buffer",) if self.momentum != 0 else ()

    def _update(self, param, grad, state, lr):
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * param                # L2: g + wd * p
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()      # b_1 = g_1 (PyTorch: no dampening)
            else:
                buf *= self.momentum                               # b_t = mu * b_{t-1} + (1 - tau) * g_t
                buf += (1 - self.dampening) * grad
            grad = grad + self.momentum * buf if self.nesterov else buf
        param -= lr * grad                                         # p_t = p_{t-1} - lr * g


class Momentum(SGD):
    """SGD with classical (heavy-ball) momentum: ``SGD(model, lr, momentum=0.9)``.

    v <- momentum * v + g   (v = g on the first step);   p <- p - lr * v
    """

    def __init__(self, model: Any, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(model, lr, momentum=momentum, weight_decay=weight_decay)


class Nesterov(SGD):
    """SGD with Nesterov momentum in PyTorch's form: ``SGD(model, lr, momentum=0.9, nesterov=True)``.

    v <- momentum * v + g   (v = g on the first step);   p <- p - lr * (g + momentum * v)
    """

    def __init__(self, model: Any, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(model, lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)


class AdaGrad(Optimizer):
    """Per-coordinate step sizes from the running sum of squared gradients, as ``torch.optim.Adagrad``.

    g <- g + weight_decay * p
    G <- G + g^2                      (G starts at initial_accumulator_value)
    p <- p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(G) + eps)
    """

    def __init__(self, model: Any, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, lr_decay: float = 0.0):
        super().__init__(model, lr, weight_decay)
        self.eps = number(self.name, "eps", eps, 0, low_open=True)
        self.initial_accumulator_value = number(self.name, "initial_accumulator_value",
                                                 initial_accumulator_value, 0)
        self.lr_decay = number(self.name, "lr_decay", lr_decay, 0)

    def _state_names(self):
        return ("sum",)

    def _update(self, param, grad, state, lr):
        xp = get_array_module(param)
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * param
        if "sum" not in state:
            state["sum"] = xp.full_like(param, self.initial_accumulator_value)
        total = state["sum"]
        total += grad * grad                                       # G_t = G_{t-1} + g_t^2
        decayed_lr = lr / (1 + (self.step_count - 1) * self.lr_decay)
        param -= decayed_lr * grad / (xp.sqrt(total) + self.eps)   # p -= lr_t * g / (sqrt(G_t) + eps)


class RMSProp(Optimizer):
    """Steps scaled by a running RMS of the gradient, as ``torch.optim.RMSprop``.

    ::

        g <- g + weight_decay * p
        v <- alpha * v + (1 - alpha) * g^2
        centered:      m <- alpha * m + (1 - alpha) * g,  denom = sqrt(v - m^2) + eps
        else:          denom = sqrt(v) + eps
        momentum > 0:  b <- momentum * b + g / denom,  p <- p - lr * b
        else:          p <- p - lr * g / denom

    Parameters
    ----------
    model : Layer
        The model whose parameters to train.
    lr : float, default 0.01
        The learning rate.
    alpha : float, default 0.99
        The smoothing constant of the running averages, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator.
    momentum : float, default 0.0
        The momentum factor; 0 for none.
    centered : bool, default False
        Divide by an estimate of the gradient's variance, sqrt(v - m^2), rather than by its
        uncentred second moment, sqrt(v).
    weight_decay : float, default 0.0
        L2 penalty coefficient, added to the gradient.
    """

    def __init__(self, model: Any, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, centered: bool = False, weight_decay: float = 0.0):
        super().__init__(model, lr, weight_decay)
        self.alpha = number(self.name, "alpha", alpha, 0, 1, high_open=True)
        self.eps = number(self.name, "eps", eps, 0, low_open=True)
        self.momentum = number(self.name, "momentum", momentum, 0)
        self.centered = flag(self.name, "centered", centered)

    def _state_names(self):
        return (("square_avg",) + (("momentum_buffer",) if self.momentum > 0 else ())
                + (("grad_avg",) if self.centered else ()))

    def _update(self, param, grad, state, lr):
        xp = get_array_module(param)
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * param
        if not state:
            state.update({name: xp.zeros_like(param) for name in self._state_names()})
        square_avg = state["square_avg"]
        square_avg *= self.alpha                                   # v_t = alpha * v_{t-1} + (1 - alpha) * g^2
        square_avg += (1 - self.alpha) * grad * grad
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - self.alpha) * (grad - grad_avg)       # m_t = alpha * m_{t-1} + (1 - alpha) * g
            denom = xp.sqrt(square_avg - grad_avg * grad_avg) + self.eps
        else:
            denom = xp.sqrt(square_avg) + self.eps
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum                                   # b_t = mu * b_{t-1} + g / denom
            buf += grad / denom
            param -= lr * buf
        else:
            param -= lr * grad / denom


class Adam(Optimizer):
    """Adaptive moment estimation, as ``torch.optim.Adam`` (weight decay is L2, added to g).

    g <- g + weight_decay * p
    m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g^2   (amsgrad: v_max <- max(v_max, v))
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)
    """

    decoupled_weight_decay = False

    def __init__(self, model: Any, lr: float = 1e-3, betas: Iterable[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(model, lr, weight_decay)
        betas = tuple(betas) if isinstance(betas, (tuple, list, np.ndarray)) else betas
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise ConfigError(f"{self.name}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(number(self.name, f"betas[{i}]", b, 0, 1, high_open=True)
                           for i, b in enumerate(betas))
        self.eps = number(self.name, "eps", eps, 0, low_open=True)
        self.amsgrad = flag(self.name, "amsgrad", amsgrad)

    def _state_names(self):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def _update(self, param, grad, state, lr):
        xp = get_array_module(param)
        beta1, beta2 = self.betas
        t = self.step_count
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                param *= 1 - lr * self.weight_decay                # AdamW: p <- p * (1 - lr * wd)
            else:
                grad = grad + self.weight_decay * param            # Adam: g <- g + wd * p
        if not state:
            state.update({name: xp.zeros_like(param) for name in self._state_names()})
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # Two scratch arrays carry every intermediate, in place, in the same order of operations
        # as the formulas (so the same rounding as PyTorch's): no other full-size temporaries.
        tmp = xp.subtract(grad, exp_avg)
        tmp *= 1 - beta1
        exp_avg += tmp                                             # m_t = beta1 * m + (1 - beta1) * g
        exp_avg_sq *= beta2                                        # v_t = beta2 * v + (1 - beta2) * g^2
        xp.multiply(grad, 1 - beta2, out=tmp)
        tmp *= grad
        exp_avg_sq += tmp
        if self.amsgrad:
            second = xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        else:
            second = exp_avg_sq
        # bias corrections: m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)
        step_size = lr / (1 - beta1 ** t)
        denom = xp.sqrt(second, out=tmp)
        denom /= math.sqrt(1 - beta2 ** t)
        denom += self.eps
        update = xp.multiply(exp_avg, step_size)
        update /= denom
        param -= update                                            # p -= lr * m_hat / (sqrt(v_hat) + eps)


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    p <- p * (1 - lr * weight_decay), then the Adam step with the plain gradient.
    """

    decoupled_weight_decay = True

    def __init__(self, model: Any, lr: float = 1e-3, betas: Iterable[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(model, lr, betas, eps, weight_decay, amsgrad)


Adagrad = AdaGrad
RMSprop = RMSProp

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
    "rmsprop": RMSProp, "adam": Adam, "adamw": AdamW,
}


def get_optimizer(name: str, model: Any, **kwargs: Any) -> Optimizer:
    """Build an optimizer by its registry name (case-insensitive), e.g. ``get_optimizer("adam", model, lr=1e-3)``.

    Unknown names and unknown keyword arguments raise ConfigError listing what is accepted.
    """
    cls = lookup("optimizer", OPTIMIZERS, name)
    check_kwargs(cls, kwargs)
    return cls(model, **kwargs)

