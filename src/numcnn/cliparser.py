"""The command line's argument parser, shared by ``numcnn`` and ``numcnn bench``.

No abbreviations (``--max-r`` for ``--max-restarts``): the MPI launcher takes its own flags out
of the command line it gives the ranks by their full spelling, and a typo must not run a
benchmark. A mistake raises ``UsageError``, which ``cli.main`` prints as one ``error:`` line
with exit status 2, instead of argparse's usage dump.
"""

from __future__ import annotations

import argparse

__all__ = ["Parser", "UsageError"]


class UsageError(Exception):
    """A mistake on the command line (not a NumcnnError: the library never raises it)."""


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations, whose mistakes raise ``UsageError``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")
