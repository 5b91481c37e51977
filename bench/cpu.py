"""CPU time by process while a stage runs, from /proc: where a stage's work went on the
whole machine, not only in the service that was timed.

Each process's CPU time (user + system) is counted for the nearest of its ancestors the
stack recorded (`nordflow_local.processes`: a service with its renderer processes,
PostgreSQL with its backends, Kafka, each sandbox), for the benchmark itself, or else as
"other" (whatever else runs on the machine: on a shared one, other people's work). A
process that ended during the stage is not counted; the stack's processes all live through
it. Linux only; elsewhere nothing is measured.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from nordflow_local import processes

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")
_REPLICA = re.compile(r"\.\d+$")  # distribution-router.2 is distribution-router's


def snapshot() -> dict[int, tuple[int, float]]:
    """Every process's parent and CPU seconds used so far; empty without /proc."""
    found: dict[int, tuple[int, float]] = {}
    if not _PROC.is_dir():
        return found
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # After the command's closing parenthesis: state, ppid, …, utime (12th), stime (13th).
        fields = stat.rpartition(")")[2].split()
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
    return found


def owner(pid: int, parents: dict[int, tuple[int, float]], named: dict[int, str]) -> str:
    """The name of the process or of its nearest named ancestor; "other" when none is."""
    seen = set()
    while pid not in named:
        if pid in seen or pid not in parents:
            return "other"
        seen.add(pid)
        pid = parents[pid][0]
    return named[pid]


class CpuMeter:
    """CPU seconds used by each of the stack's processes (with their children), the
    benchmark and everything else, from construction until `stop`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.started = snapshot()

    def stop(self) -> dict[str, float]:
        """Seconds of CPU by owner since the meter started, largest first."""
        now = snapshot()
        named = {r.pid: _REPLICA.sub("", r.name) for r in processes.records(self.state_dir)}
        named[os.getpid()] = "bench"
        used: dict[str, float] = {}
        for pid, (_, seconds) in now.items():
            before = self.started.get(pid)
            spent = seconds - (before[1] if before is not None else 0.0)
            if spent > 0:
                name = owner(pid, now, named)
                used[name] = used.get(name, 0.0) + spent
        return dict(sorted(used.items(), key=lambda item: -item[1]))
