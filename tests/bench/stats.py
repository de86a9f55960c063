"""Small statistics helpers for the benchmarks."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)) - 1, 0)
    return ordered[rank]


def ms(seconds: float) -> str:
    """Seconds as milliseconds with one decimal."""
    return f"{seconds * 1000:.1f} ms"


def machine_cpu_seconds() -> float:
    """CPU time this machine has spent busy (all cores, all processes) since boot."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has spent, with its reaped children's and that of
    every live descendant; 0 when the process is gone."""
    total = 0.0
    for member in _with_descendants(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # Fields after the command name (which may hold spaces and parentheses): utime is the
        # 14th field of the line, stime, cutime and cstime follow it.
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(f) for f in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def processes_cpu_seconds(pids: Iterable[int]) -> float:
    """The sum of :func:`process_cpu_seconds` over ``pids``."""
    return sum(process_cpu_seconds(pid) for pid in pids)


def _with_descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            threads = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for thread in threads:
            try:
                queue.extend(int(child) for child in (thread / "children").read_text().split())
            except OSError:
                continue
    return found


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """The least, the median (nearest rank) and the greatest of ``values``."""
    return min(values), percentile(values, 0.5), max(values)
