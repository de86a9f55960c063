"""The processes a test started, followed through /proc (Linux): by PID and start time, so that a
PID the kernel has given to a newer process is never taken for the one the test knew."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_START_TIME = 19  # in the fields after the command name: state is 0, starttime 19
_PARENT = 1
_EXITED = ("Z", "X")  # zombie, dead


@dataclass(frozen=True)
class ProcessIdentity:
    """A process by PID and start time (clock ticks after boot)."""

    pid: int
    start_ticks: int

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity | None:
        """The process ``pid`` now, or None when there is none."""
        fields = _stat_fields(pid)
        return None if fields is None else cls(pid, int(fields[_START_TIME]))

    def alive(self) -> bool:
        """Whether this very process still exists and has not finished exiting.

        A zombie has exited, but only once all its threads have: the first thread can be a
        zombie while the others are still closing the process's files (its sockets)."""
        fields = _stat_fields(self.pid)
        if fields is None or int(fields[_START_TIME]) != self.start_ticks:
            return False
        return fields[0] not in _EXITED or any(
            state not in _EXITED for state in _thread_states(self.pid)
        )

    def command(self) -> str:
        """Its command line ("" once it has gone)."""
        try:
            raw = (PROC / str(self.pid) / "cmdline").read_bytes()
        except OSError:
            return ""
        return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)

    def kill(self) -> None:
        """SIGKILL it, if it is still this process."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _stat_fields(pid: int, stat_file: Path | None = None) -> list[str] | None:
    """The fields of /proc/<pid>/stat (or ``stat_file``) after the command name (state first),
    or None when it is gone."""
    try:
        stat = (stat_file or PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def _thread_states(pid: int) -> list[str]:
    """The state of each thread of process ``pid`` still listed."""
    try:
        threads = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return []
    states = [_stat_fields(pid, thread / "stat") for thread in threads]
    return [fields[0] for fields in states if fields is not None]


def children_of(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid`` (exited ones not yet reaped included)."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[_PARENT]) == pid:
                found.append(int(entry.name))
    return found


def descendants_of(pid: int) -> list[ProcessIdentity]:
    """Every living process below ``pid``: its children, their children, and so on."""
    found: list[ProcessIdentity] = []
    todo = children_of(pid)
    while todo:
        identity = ProcessIdentity.of(todo.pop())
        if identity is not None and identity.alive():
            found.append(identity)
            todo += children_of(identity.pid)
    return found


def wait_until_gone(processes: list[ProcessIdentity], timeout: float) -> list[ProcessIdentity]:
    """Wait up to ``timeout`` seconds for ``processes`` to exit; those still alive then."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if p.alive()]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if p.alive()]
    return alive
