"""Faults on purpose, for testing recovery: one rank dies, raises or hangs at one step.

::

    NUMCNN_FAULT="rank=1,step=7,kind=kill" numcnn train ... --processes 2 --max-restarts 1

This module is the only place that reads ``NUMCNN_FAULT``, and only a rank started by the
``--processes`` launcher (``ATTEMPT_VAR`` set) heeds it (``hook_from_environment``); a rank
that ``mpiexec`` started directly ignores it. Its fields:

rank     the rank that fails (default 0)
step     the step of the run (``Trainer.global_step``, counted from 1) after whose backward it
         fails
kind     kill (SIGKILL itself, as the out-of-memory killer would), raise (a RuntimeError), or
         hang (sleep until it is stopped, so the other ranks wait in a collective)
attempts how many starts of the job fail: 1 (default: the first only, so a restart recovers),
         N, or "all" (a fault that every restart meets again)
"""

from __future__ import annotations

import os
import signal
import time

from ..errors import ConfigError
from ..train import Hook
from .abort import ATTEMPT_VAR

FAULT_VAR = "NUMCNN_FAULT"
KINDS = ("kill", "raise", "hang")


class Fault(Hook):
    """The Trainer hook that makes ``rank`` fail in the way ``kind`` says at step ``step``, on the
    first ``attempts`` starts of the job (None: on every start)."""

    def __init__(self, rank: int, step: int, kind: str, attempts: int | None = 1):
        if kind not in KINDS:
            raise ConfigError(f"{FAULT_VAR}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.rank, self.step, self.kind, self.attempts = rank, step, kind, attempts

    def after_backward(self, trainer) -> None:
        attempt = int(os.environ.get(ATTEMPT_VAR, "0"))
        if getattr(trainer, "rank", 0) != self.rank or trainer.global_step != self.step:
            return
        if self.attempts is not None and attempt >= self.attempts:
            return
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "raise":
            raise RuntimeError(f"a fault on purpose at step {self.step} ({FAULT_VAR})")
        while True:  # hang: the others wait for this rank's all-reduce until their deadline
            time.sleep(60)


def hook_from_environment() -> list[Fault]:
    """[the Fault that ``NUMCNN_FAULT`` describes], or [] when it is not set or this rank was not
    started by the launcher (which sets ``ATTEMPT_VAR`` for its ranks, and only for them)."""
    text = os.environ.get(FAULT_VAR, "").strip()
    if not text or ATTEMPT_VAR not in os.environ:
        return []
    try:
        fields = dict(part.split("=", 1) for part in text.split(","))
        attempts = fields.pop("attempts", "1")
        fault = Fault(int(fields.pop("rank", "0")), int(fields.pop("step")), fields.pop("kind"),
                      None if attempts == "all" else int(attempts))
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{FAULT_VAR}={text!r}: expected rank=R,step=S,kind=kill|raise|hang[,attempts=N|all] "
                          f"({type(exc).__name__}: {exc})") from None
    if fields:
        raise ConfigError(f"{FAULT_VAR}={text!r}: unknown fields {', '.join(sorted(fields))}")
    return [fault]
