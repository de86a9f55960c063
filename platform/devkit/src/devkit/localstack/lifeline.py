"""Start a command that cannot outlive the process that started it.

    python -m devkit.localstack.lifeline PARENT_PID -- COMMAND [ARG...]

On Linux the kernel's parent-death signal (prctl PR_SET_PDEATHSIG) is set to SIGKILL, then the
command replaces this process (exec keeps the PID and the setting). When the parent dies, however
it dies (SIGKILL included), the kernel kills the command. If the parent died before the setting
was made, this process has already been given to another parent: it sees that (getppid is no
longer PARENT_PID) and exits without running the command.

The setting belongs to the thread that forked: start these from a thread that lives as long as
the parent (`make run` starts them from its main thread). Done here, after exec of a fresh
interpreter, rather than in a preexec_fn: Python code between fork and exec can deadlock when the
parent has other threads. The command starts with no signal blocked (the parent may block the
signals it waits for, and a blocked mask survives exec) and SIGPIPE at its default.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import NoReturn

MODULE = "devkit.localstack.lifeline"
PR_SET_PDEATHSIG = 1
DEATH_SIGNAL = signal.SIGKILL
# Exit statuses of this module when it does not run the command.
USAGE_ERROR = 2
PARENT_GONE = 3


def command_with_lifeline(command: list[str], parent_pid: int | None = None) -> list[str]:
    """``command`` started through this module: it dies with ``parent_pid`` (default: this
    process)."""
    parent = os.getpid() if parent_pid is None else parent_pid
    return [sys.executable, "-m", MODULE, str(parent), "--", *command]


def _set_parent_death_signal(sig: signal.Signals) -> None:
    if not sys.platform.startswith("linux"):
        return  # no such setting: the parent's orderly stop is all there is
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")


def _reset_signals() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec.
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def run(parent_pid: int, command: list[str]) -> NoReturn:
    """Tie this process to ``parent_pid`` and replace it with ``command`` (never returns)."""
    _set_parent_death_signal(DEATH_SIGNAL)
    if os.getppid() != parent_pid:
        print(
            f"lifeline: process {parent_pid} is gone already; not starting {command[0]}",
            file=sys.stderr,
        )
        raise SystemExit(PARENT_GONE)
    _reset_signals()
    os.execvp(command[0], command)  # noqa: S606 - the caller's argv, no shell on purpose


def main(argv: list[str]) -> NoReturn:
    """Parse ``PARENT_PID -- COMMAND...`` and run it (see the module's docstring)."""
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print(f"usage: python -m {MODULE} PARENT_PID -- COMMAND [ARG...]", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)
    run(int(argv[0]), argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
