"""CPU time of groups of processes over a window, read from /proc.

`leb bench http` samples the gunicorn processes, the load generator and the
PostgreSQL backends of the benchmark database when its timed window opens and
when it closes; the difference, divided by the window, is the number of cores
each group kept busy. This module imports no models and nothing but the
standard library.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    return (PROC / "stat").exists()


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 on)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or ")".
    return text[text.rfind(")") + 2 :].split()


def process_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of one process (all its threads)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 13:
        return None
    # utime and stime are fields 14 and 15 of the whole line.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idling or waiting for I/O."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return 0.0
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(values) - values[3] - values[4]) / _TICKS


def _pids() -> list[int]:
    try:
        return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields and len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def postgres_processes(database: str) -> tuple[list[int], list[int]]:
    """(backends connected to `database`, the server's shared processes: WAL
    writer, checkpointer, background writer, autovacuum and the postmaster),
    recognised by the titles PostgreSQL gives its processes. Backends of other
    databases are in neither list."""
    backends, shared = [], []
    for pid in _pids():
        argv = _cmdline(pid)
        if not argv:
            continue
        title = " ".join(argv)
        if title.startswith("postgres: "):
            words = title.split()[1:]
            if words and words[0].endswith(":"):  # the cluster_name, as in "15/main:"
                words = words[1:]
            # A backend: "<user> <database> <host>(<port>) <state>"
            if len(words) >= 3 and ("(" in words[2] or words[2] == "[local]"):
                if words[1] == database:
                    backends.append(pid)
            else:
                shared.append(pid)
        elif Path(argv[0]).name in ("postgres", "postmaster") and len(argv) > 1:
            shared.append(pid)
    return backends, shared


@dataclass
class Snapshot:
    machine: float
    groups: dict[str, dict[int, float]] = field(default_factory=dict)


def snapshot(groups: Mapping[str, Iterable[int]]) -> Snapshot:
    taken = Snapshot(machine=machine_busy_seconds())
    for name, pids in groups.items():
        seconds = {}
        for pid in pids:
            value = process_seconds(pid)
            if value is not None:
                seconds[pid] = value
        taken.groups[name] = seconds
    return taken


@dataclass
class CpuReport:
    seconds: float
    cores: int
    machine: float  # cores busy, everything on the machine
    groups: dict[str, float]  # cores busy per group
    processes: dict[str, int]

    @property
    def ours(self) -> float:
        return sum(self.groups.values())

    @property
    def others(self) -> float:
        return max(0.0, self.machine - self.ours)


def report(before: Snapshot, after: Snapshot, seconds: float) -> CpuReport:
    """Cores busy per group between the snapshots. A process that appeared
    during the window counts from its start; one that ended is not counted."""
    groups, processes = {}, {}
    for name, now in after.groups.items():
        then = before.groups.get(name, {})
        used = sum(value - then.get(pid, 0.0) for pid, value in now.items())
        groups[name] = max(0.0, used) / seconds if seconds else 0.0
        processes[name] = len(now)
    return CpuReport(
        seconds=seconds,
        cores=os.cpu_count() or 1,
        machine=max(0.0, after.machine - before.machine) / seconds if seconds else 0.0,
        groups=groups,
        processes=processes,
    )


GroupFinder = Callable[[], dict[str, list[int]]]
