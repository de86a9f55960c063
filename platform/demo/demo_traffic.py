"""Steady traffic through the gateway while the demo rolls order (the project's load generator,
platform/loadgen), with a live counter for the status line."""

from __future__ import annotations

import threading

from loadgen.background import LoadInBackground
from loadgen.plan import LoadPlan
from loadgen.report import LoadReport, SecondStats

# Requests/s through the gateway during the rollouts: the zero-downtime claim's rate.
RATE = 50.0
# An upper bound: the traffic is stopped when the story is done.
LONGEST_SECONDS = 900.0
# The answers still due when it stops (each request times out after 5 s).
STOP_TIMEOUT_SECONDS = 30.0


class Traffic:
    """``RATE`` requests/s (GET and POST /api/orders with real tokens) until stopped, counted
    live: every request's outcome, and the latest second's p99."""

    def __init__(self, gateway: str) -> None:
        plan = LoadPlan(target=gateway, rate=RATE, duration=LONGEST_SECONDS)
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.last_p99_ms: float | None = None
        self._load = LoadInBackground(plan, on_second=self._count)

    def _count(self, second: SecondStats) -> None:
        with self._lock:
            self.sent += second.sent
            self.failed += second.failed
            self.last_p99_ms = second.p99_ms

    def start(self) -> None:
        """Create the users and start sending (returns once traffic flows)."""
        self._load.start()

    def mark(self, label: str) -> None:
        """Name this moment, to count a chapter's requests afterwards."""
        self._load.mark(label)

    def line(self) -> str:
        """The live counter, e.g. ``traffic: 1250 requests, 0 failed, p99 31 ms``."""
        with self._lock:
            p99 = f", p99 {self.last_p99_ms:.0f} ms" if self.last_p99_ms is not None else ""
            return f"traffic {RATE:g}/s: {self.sent} requests, {self.failed} failed{p99}"

    def stop(self) -> LoadReport:
        """Stop sending, wait for the last answers; the whole run's report."""
        self._load.stop()
        return self._load.wait(timeout=STOP_TIMEOUT_SECONDS)
