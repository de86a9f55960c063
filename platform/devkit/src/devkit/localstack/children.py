"""The processes a supervisor (`make run`) starts, and how they stop.

Each child:
- runs through devkit.localstack.lifeline, so the kernel kills it when the supervisor dies, even
  by SIGKILL (start children from the main thread: the kernel ties that to the forking thread);
- leads a process group and session of its own: the terminal's Ctrl-C reaches only the
  supervisor, which stops the children in its order, and a signal to a child goes to its group,
  so anything the child started goes with it;
- has its output copied to the terminal by an OutputPump.

Stopping is in stages (services, then NATS). Each waits for the stop signals too
(devkit.localstack.stopsignals): one arriving mid-stage is returned to the caller, who kills
everything at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from devkit.localstack.lifeline import command_with_lifeline
from devkit.localstack.prefixedoutput import OutputPump
from devkit.localstack.stopsignals import next_stop_signal

POLL_SECONDS = 0.1
REAP_SECONDS = 5.0  # for a SIGKILLed process to be reaped (more only in uninterruptible sleep)
OUTPUT_DRAIN_SECONDS = 2.0


@dataclass
class Child:
    """One started process: its name, the process and the pump of its output."""

    name: str
    process: subprocess.Popen[bytes]
    pump: OutputPump

    @property
    def pid(self) -> int:
        """The child's PID (also its process group's ID)."""
        return self.process.pid

    def running(self) -> bool:
        """Whether the child has not exited yet."""
        return self.process.poll() is None

    def signal_group(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child's process group (the child and whatever it started).

        Only while the child has not been reaped: its PID cannot belong to anyone else then."""
        if self.process.returncode is not None:
            return
        # ProcessLookupError: it exited between the check and the signal (reaped on next poll).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


@dataclass
class StageResult:
    """How a stage of the stop went: a stop signal that interrupted it, the children that had
    to be killed after the grace period."""

    interrupted_by: signal.Signals | None = None
    killed: list[str] = field(default_factory=list)


class Children:
    """The children of this process, in the order they were started."""

    def __init__(self, sink: TextIO | None = None) -> None:
        self.started: list[Child] = []
        self._sink = sink

    def start(
        self, name: str, command: Sequence[str], env: Mapping[str, str], prefix: str
    ) -> Child:
        """Start ``command`` as child ``name`` (see the module's docstring); its output lines
        begin with ``prefix``."""
        process = subprocess.Popen(
            command_with_lifeline(list(command)),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert process.stdout is not None
        pump = OutputPump(prefix, process.stdout, self._sink)
        pump.start()
        child = Child(name, process, pump)
        self.started.append(child)
        return child

    def first_exited(self) -> Child | None:
        """A child that has exited on its own, if any."""
        return next((child for child in self.started if not child.running()), None)

    def stop_stage(self, children: Sequence[Child], grace: float) -> StageResult:
        """SIGTERM to ``children`` together, wait up to ``grace`` seconds for all of them, then
        SIGKILL the rest. Returns early, leaving them as they are, when a stop signal arrives."""
        for child in children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(child.running() for child in children):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                late = [child for child in children if child.running()]
                self._kill(late)
                return StageResult(killed=[child.name for child in late])
            received = next_stop_signal(min(POLL_SECONDS, remaining))
            if received is not None:
                return StageResult(interrupted_by=received)
        return StageResult()

    def kill_all(self) -> None:
        """SIGKILL every child still running (and its group), and reap them."""
        self._kill([child for child in self.started if child.running()])

    def drain_output(self) -> None:
        """Wait (briefly) until every child's output has been copied to the end."""
        deadline = time.monotonic() + OUTPUT_DRAIN_SECONDS
        for child in self.started:
            child.pump.join(max(deadline - time.monotonic(), 0.0))

    @staticmethod
    def _kill(children: Sequence[Child]) -> None:
        for child in children:
            child.signal_group(signal.SIGKILL)
        for child in children:
            # A process stuck in the kernel dies as soon as it leaves; not waited for longer.
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=REAP_SECONDS)
