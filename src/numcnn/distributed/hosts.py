"""The hosts of a job on several machines: reading them, finding those reachable, and how many
ranks to start there.

::

    hosts = parse_hosts("node1:4,node2:4")          # or read_hostfile("hosts.txt")
    down = unreachable(hosts, mpiexec)             # {"node2": "its name does not resolve"}
    count = rank_count(8, minimum=4, batch_size=256, slots=4)   # 4

A host is reachable when its name resolves and MPICH's ``mpiexec`` can start this Python there
(``mpiexec -n 1 -hosts HOST python -c ''``, over ssh for another machine), within a time limit.
That is exactly what the job's ranks need, and nothing weaker: a host that answers pings but
refuses ssh is as good as gone.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from ..errors import ConfigError

PROBE_TIMEOUT_S = 30.0


class Host(NamedTuple):
    """A host name and the ranks it takes (its slots)."""

    name: str
    slots: int


def parse_hosts(text: str, where: str = "--hosts") -> list[Host]:
    """Hosts from MPICH's list form, ``name[:slots],...`` (slots default 1); a ConfigError
    naming ``where`` for an empty name or a slot count that is not a positive integer."""
    hosts = []
    for item in (part.strip() for part in text.split(",")):
        name, _, slots = item.partition(":")
        if not name.strip() or (slots and not (slots.strip().isdigit() and int(slots) > 0)):
            raise ConfigError(f"{where}: expected HOST or HOST:SLOTS (SLOTS a positive integer), got {item!r}")
        hosts.append(Host(name.strip(), int(slots) if slots else 1))
    return hosts


def read_hostfile(path) -> list[Host]:
    """Hosts from a host file in MPICH's form: one ``name[:slots]`` a line; blank lines and
    text after ``#`` are ignored. It is read again before every start of the job, so a host
    taken out of the file between restarts is no longer tried."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--hostfile {path}: cannot read it ({exc})") from None
    hosts = [host for number, line in enumerate(lines, start=1) if line.split("#", 1)[0].strip()
             for host in parse_hosts(line.split("#", 1)[0].strip(), f"{path}:{number}")]
    if not hosts:
        raise ConfigError(f"--hostfile {path}: names no host")
    return hosts


def hosts_argument(hosts: list[Host]) -> str:
    """The value of mpiexec's ``-hosts``: ``name:slots,...``."""
    return ",".join(f"{host.name}:{host.slots}" for host in hosts)


def unreachable(hosts: list[Host], mpiexec: str, timeout: float = PROBE_TIMEOUT_S) -> dict[str, str]:
    """{name: why} of the hosts that cannot take ranks now; all are probed at once."""
    names = list(dict.fromkeys(host.name for host in hosts))
    with ThreadPoolExecutor(max_workers=min(32, len(names))) as pool:
        found = dict(zip(names, pool.map(lambda name: _probe(name, mpiexec, timeout), names)))
    return {name: why for name, why in found.items() if why is not None}


def _probe(name: str, mpiexec: str, timeout: float) -> str | None:
    try:
        socket.getaddrinfo(name, None)
    except (socket.gaierror, UnicodeError):
        return "its name does not resolve"
    command = [mpiexec, "-n", "1", "-hosts", name, sys.executable, "-c", ""]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"mpiexec could not start a process there within {timeout:g} s"
    if done.returncode == 0:
        return None
    said = next((line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()), "")
    return f"mpiexec could not start a process there (status {done.returncode}{': ' + said if said else ''})"


def rank_count(wanted: int, minimum: int, batch_size: int, slots: int) -> int:
    """How many ranks to start: the most, up to ``wanted`` and to the reachable ``slots``,
    among which the global batch divides evenly; a ConfigError if that is fewer than ``minimum``."""
    count = next((k for k in range(min(wanted, slots), 0, -1) if batch_size % k == 0), 0)
    if count < minimum:
        divides = "" if count == min(wanted, slots) else f" among which the global batch of {batch_size} divides"
        raise ConfigError(f"only {count} ranks can start{divides} on the {slots} reachable slots, fewer than "
                          f"--min-processes {minimum}")
    return count


def place(hosts: list[Host], count: int, down: dict[str, str]) -> list[Host]:
    """The reachable hosts, in order, with slots for ``count`` ranks in all (the first hosts filled)."""
    placed, left = [], count
    for host in hosts:
        if host.name in down or left == 0:
            continue
        placed.append(Host(host.name, min(host.slots, left)))
        left -= placed[-1].slots
    return placed
