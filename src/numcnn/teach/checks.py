"""How an exercise is checked: the learner's answer is run, with the numcnn functions the
exercise asks them to do without taken away, and the verdict is one of three:

* **not written yet**: the answer is still the stub (``...``, or code that raises
  ``NotImplementedError``); nothing is raised, so a notebook of stubs runs to its end;
* **correct**: every test passed; the verdict says so (and what it showed);
* **wrong**: an ``ExerciseError`` (an ``AssertionError``) saying what differed, or which
  forbidden function the answer called.

A forbidden function is replaced, for the length of each call into the learner's code, by one
that raises: in every numcnn module that holds it (so ``nc.Conv2d``, which calls it, is
blocked too) and in the learner's own namespace (so ``from numcnn.functional import conv2d``
is no way round). The checks' own expected values are computed outside those calls.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import sys
import traceback
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from ..errors import ExerciseError, GradcheckError
from .words import say

PACKAGE = Path(__file__).resolve().parents[1]  # frames in here are numcnn's, not the learner's


class Verdict:
    """What a check found: ``passed`` is True for a correct answer, False for one not written
    yet; its text is what the notebook shows."""

    def __init__(self, passed: bool, text: str):
        self.passed, self.text = passed, text

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.text


class Rule(NamedTuple):
    """What an exercise rules out: ``what`` in words (a key of ``words.ENGLISH``), and the
    functions that do it, as "module:name"."""

    what: str
    places: tuple[str, ...]

    def __add__(self, other: "Rule") -> "Rule":  # type: ignore[override]
        return Rule(self.what if self.what == other.what else f"{self.what} + {other.what}",
                    self.places + other.places)


class Forbidden(Exception):
    """Raised inside a check when the answer calls a function the exercise rules out."""


def display_name(where: str) -> str:
    """"numcnn.functional:conv2d" -> "F.conv2d", "numcnn.layers:Conv2d" -> "nc.Conv2d"."""
    module, _, name = where.partition(":")
    if module == "numcnn.functional":
        return f"F.{name}"
    if module in ("numcnn", "numcnn.layers"):
        return f"nc.{name}"
    return f"{module}.{name}"


def _resolve(where: str):
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(module), name)


def _namespaces(answer) -> list[dict]:
    """The global namespaces the answer's code reads names from."""
    functions = [answer] if inspect.isfunction(answer) else \
        [f for f in vars(answer).values() if inspect.isfunction(f)] if inspect.isclass(answer) else []
    return list({id(f.__globals__): f.__globals__ for f in functions}.values())


@contextlib.contextmanager
def forbidding(where: Iterable[str], answer=None):
    """Within the block, each function named in ``where`` ("module:name") raises Forbidden,
    wherever a numcnn module or the answer's namespace holds it; everything is put back after."""
    blocked = {}
    for place in where:
        original = _resolve(place)

        def refuse(*args, _name=display_name(place), **kwargs):
            raise Forbidden(_name)
        blocked[id(original)] = refuse
    namespaces = [vars(m) for name, m in list(sys.modules.items())
                  if name.split(".")[0] == "numcnn" and not name.startswith("numcnn.teach") and m is not None]
    namespaces += _namespaces(answer)
    swapped = []
    try:
        for namespace in namespaces:
            for key, value in list(namespace.items()):
                if id(value) in blocked:
                    swapped.append((namespace, key, value))
                    namespace[key] = blocked[id(value)]
        yield
    finally:
        for namespace, key, value in reversed(swapped):
            namespace[key] = value


def guarded(answer, forbid: tuple[str, ...]):
    """The answer, with every call into it made under ``forbidding(forbid)``: a function is
    wrapped, a class is subclassed with its methods wrapped; other answers pass unchanged."""
    if not forbid or not callable(answer):
        return answer

    def wrap(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            with forbidding(forbid, answer):
                return fn(*args, **kwargs)
        return call
    if inspect.isclass(answer):
        methods = {name: wrap(f) for name, f in vars(answer).items() if inspect.isfunction(f)}
        return type(answer.__name__, (answer,), methods)
    return wrap(answer)


def _unfinished(exc: BaseException) -> str:
    """Where a NotImplementedError came from: the innermost function of the learner's
    ("Convolution.backward"), or "?" if none."""
    codes = [frame.f_code for frame, _ in traceback.walk_tb(exc.__traceback__)
             if not Path(frame.f_code.co_filename).resolve().is_relative_to(PACKAGE)]
    return getattr(codes[-1], "co_qualname", codes[-1].co_name) if codes else "?"


def _unanswered(answer) -> bool:
    """True for ``...``, and for a dict, list or tuple that still holds one."""
    if answer is ...:
        return True
    if isinstance(answer, dict):
        return any(_unanswered(v) for v in answer.values())
    return isinstance(answer, (list, tuple)) and any(_unanswered(v) for v in answer)


def _not_written(title: str) -> Verdict:
    return Verdict(False, say("{exercise}: not written yet (replace `raise NotImplementedError` or `...` "
                              "with your answer, run that cell, then this one)", exercise=title))


def exercise(title: str, run: Callable, *answers, rule: Rule | None = None) -> Verdict:
    """Check ``answers`` with ``run(*answers)``, which raises AssertionError (or
    GradcheckError) on a wrong answer and may return a sentence about a right one.

    Returns
    -------
    Verdict: passed for a correct answer, not passed for one not written yet.

    Raises
    ------
    ExerciseError: the answer is wrong, or calls a function the ``rule`` rules out.
    """
    forbid = rule.places if rule else ()
    if any(_unanswered(answer) for answer in answers):
        return _not_written(title)
    try:
        detail = run(*(guarded(answer, forbid) for answer in answers))
    except NotImplementedError as exc:
        where = _unfinished(exc)
        if where in {getattr(a, "__qualname__", None) for a in answers} or where == "?":
            return _not_written(title)
        return Verdict(False, say("{exercise}: not finished: {where} raises NotImplementedError",
                                  exercise=title, where=where))
    except Forbidden as exc:
        what = " + ".join(say(part) for part in rule.what.split(" + "))
        raise ExerciseError(say("{exercise}: this exercise asks you to do without {what}, and your answer calls "
                                "{called}", exercise=title, what=what, called=exc.args[0])) from None
    except (AssertionError, GradcheckError) as exc:
        if isinstance(exc, ExerciseError):
            raise
        raise ExerciseError(say("{exercise}: wrong: {reason}", exercise=title, reason=str(exc).strip())) from None
    text = say("{exercise}: correct", exercise=title)
    return Verdict(True, f"{text} ({detail})" if detail else text)
