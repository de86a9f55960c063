"""A command started through devkit.localstack.lifeline dies with the process that started it,
even by SIGKILL, and never starts once that process is gone. Real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from devkit.localstack.lifeline import PARENT_GONE, command_with_lifeline
from devkit.testing.processes import ProcessIdentity, wait_until_gone

# A parent that starts its argv through the lifeline, prints the child's PID, then waits.
PARENT = """
import subprocess, sys
from devkit.localstack.lifeline import command_with_lifeline
from devkit.localstack.stopsignals import hold_stop_signals
if sys.argv[1] == "held":
    hold_stop_signals()
child = subprocess.Popen(command_with_lifeline(sys.argv[2:]))
print(child.pid, flush=True)
if sys.argv[1] == "exit-now":
    raise SystemExit(0)
child.wait()
"""


def parent_of(mode: str, command: list[str]) -> subprocess.Popen[str]:
    """A real parent process running PARENT; ``mode`` is wait, held or exit-now."""
    return subprocess.Popen(
        [sys.executable, "-c", PARENT, mode, *command], stdout=subprocess.PIPE, text=True
    )


def wait_for_command(pid: int, expected: str, timeout: float = 10.0) -> ProcessIdentity:
    """Wait until process ``pid`` runs ``expected`` (the lifeline has exec'd it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        identity = ProcessIdentity.of(pid)
        if identity is not None and identity.command() == expected:
            return identity
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never ran {expected!r}")


def test_the_command_dies_when_its_parent_is_killed_with_sigkill() -> None:
    parent = parent_of("wait", ["sleep", "60"])
    try:
        assert parent.stdout is not None
        child = wait_for_command(int(parent.stdout.readline()), "sleep 60")
        parent.kill()
        parent.wait()
        assert wait_until_gone([child], timeout=2) == []
    finally:
        parent.kill()
        parent.wait()


def test_the_command_is_not_started_when_the_parent_died_first(tmp_path: Path) -> None:
    # The parent exits right after the fork, before the new interpreter reaches prctl: the
    # lifeline finds itself adopted and exits (were it quicker, the kernel would kill it).
    marker = tmp_path / "started"
    parent = parent_of("exit-now", ["touch", str(marker)])
    assert parent.wait(timeout=10) == 0
    time.sleep(1.5)
    assert not marker.exists()


def test_the_lifeline_refuses_a_parent_that_is_not_its_own(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    ran = subprocess.run(
        command_with_lifeline(["touch", str(marker)], parent_pid=1),
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == PARENT_GONE
    assert "process 1 is gone already" in ran.stderr
    assert not marker.exists()


def signal_set(status: str, field: str) -> set[int]:
    """The signals of a /proc/<pid>/status mask line (SigBlk, SigIgn)."""
    line = next(line for line in status.splitlines() if line.startswith(field + ":"))
    mask = int(line.split()[1], 16)
    return {number for number in range(1, 65) if mask & (1 << (number - 1))}


def test_the_command_starts_with_no_signal_blocked_and_sigpipe_at_its_default() -> None:
    # The parent blocks the stop signals as `make run` does; the command must not inherit that.
    parent = parent_of("held", ["cat", "/proc/self/status"])
    output, _ = parent.communicate(timeout=20)
    status = output.split("\n", 1)[1]
    assert signal_set(status, "SigBlk") == set()
    assert signal.SIGPIPE not in signal_set(status, "SigIgn")
