"""Checks of optimizer and schedule hyper-parameters, with errors that name what was expected."""

from __future__ import annotations

import inspect
import math
from numbers import Integral, Real
from typing import Any

import numpy as np

from ..errors import ConfigError


def number(owner: str, name: str, value: Any, low: float, high: float = math.inf, *,
            low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a Python float, or a ConfigError naming the owner, the value and the range.

    A Python float (not np.float64) keeps float32 arithmetic in float32 under NumPy's scalar rules.
    """
    try:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    inside = ((x > low) if low_open else (x >= low)) and ((x < high) if high_open else (x <= high))
    if not (math.isfinite(x) and inside):
        top = "inf)" if math.isinf(high) else f"{high:g}{')' if high_open else ']'}"
        valid = f"{'(' if low_open else '['}{low:g}, {top}"
        raise ConfigError(f"{owner}: {name} must be a finite number in {valid}, got {value!r}")
    return x


def integer(owner: str, name: str, value: Any, low: int) -> int:
    """``value`` as an int >= low, or a ConfigError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral) or value < low:
        raise ConfigError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def flag(owner: str, name: str, value: Any) -> bool:
    """``value`` as a bool (True, False, 1 or 0), or a ConfigError."""
    if not isinstance(value, (bool, np.bool_, Integral)) or value not in (0, 1):
        raise ConfigError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def constructor_args(cls: type) -> list[str]:
    """The keyword arguments of ``cls(...)`` after its first one (the model or optimizer)."""
    return list(inspect.signature(cls.__init__).parameters)[2:]


def check_kwargs(cls: type, kwargs: dict[str, Any]) -> None:
    """ConfigError for keyword arguments ``cls`` does not take, or required ones not given."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    unknown = sorted(set(kwargs) - {p.name for p in params})
    missing = [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in kwargs]
    if unknown or missing:
        raise ConfigError(f"{cls.__name__}: unknown argument(s) {unknown}, missing required {missing}; "
                          f"accepted: {[p.name for p in params]}")


def lookup(kind: str, registry: dict[str, type], name: Any) -> type:
    key = name.lower() if isinstance(name, str) else name
    if key not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")
    return registry[key]

