"""The stop signals are taken by the main loop, one by one, with no handler: a process holding
them is neither ended nor interrupted by them. Real processes and signals."""

from __future__ import annotations

import signal
import subprocess
import sys

# Holds the stop signals, then reports each wait's outcome: a signal's name, or "woken".
WAITER = """
import subprocess, sys
from devkit.localstack.stopsignals import hold_stop_signals, next_stop_signal
hold_stop_signals()
if sys.argv[1] == "child":
    subprocess.Popen(["sleep", "0.3"])
print("held", flush=True)
for _ in range(int(sys.argv[2])):
    received = next_stop_signal(20)
    print(received.name if received else "woken", flush=True)
"""


def waiter(mode: str, waits: int) -> subprocess.Popen[str]:
    """A process running WAITER, once it holds the signals."""
    process = subprocess.Popen(
        [sys.executable, "-c", WAITER, mode, str(waits)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "held\n"
    return process


def test_signals_sent_together_are_all_taken_in_turn() -> None:
    process = waiter("signals", 3)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        process.send_signal(sig)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert sorted(output.split()) == ["SIGHUP", "SIGINT", "SIGTERM"]


def test_a_child_that_exits_wakes_the_wait() -> None:
    process = waiter("child", 1)
    output, _ = process.communicate(timeout=10)  # 20 s unless the child's exit wakes it
    assert output == "woken\n"
