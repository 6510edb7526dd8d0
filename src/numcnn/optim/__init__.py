"""Optimizers and learning-rate schedules, step for step the same as ``torch.optim``.

An optimizer walks ``model.named_parameters()`` at every ``step()`` and reads the current
``owner.params[key]`` and ``owner.grads[key]`` there, because ``backward`` replaces the gradient
arrays each time. It updates every parameter in place (the array keeps its identity, so layers
and other references see the new values) and in the parameter's own dtype: a float32 model stays
float32, and so do its optimizer state arrays.

::

    opt = Adam(model, lr=1e-3)
    schedule = CosineAnnealingLR(opt, T_max=epochs)
    for epoch in range(epochs):
        for x, y in batches:
            opt.zero_grad(); loss.forward(model(x), y); model.backward(loss.backward()); opt.step()
        schedule.step()

State dicts hold no Python objects, so they save without pickle: ``{"hyper": JSON-friendly
dict, "arrays": {"exp_avg/0.weight": ndarray, ...}}``. State names follow PyTorch
(``momentum_buffer``, ``sum``, ``square_avg``, ``grad_avg``, ``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq``), parameter names are the model's dotted names.
"""

from .optimizers import (OPTIMIZERS, SGD, AdaGrad, Adagrad, Adam, AdamW, Momentum, Nesterov, Optimizer, RMSProp,
                         RMSprop, get_optimizer)
from .schedules import SCHEDULES, CosineAnnealingLR, LinearWarmup, LRSchedule, StepLR, WarmupCosine, get_schedule

__all__ = ["Optimizer", "SGD", "Momentum", "Nesterov", "AdaGrad", "Adagrad", "RMSProp", "RMSprop", "Adam", "AdamW", "OPTIMIZERS",
           "get_optimizer", "LRSchedule", "StepLR", "CosineAnnealingLR", "LinearWarmup", "WarmupCosine",
           "SCHEDULES", "get_schedule"]
