"""Load in a thread of its own, for synchronous code (pytest functions, the demo) to run beside.

with LoadInBackground(LoadPlan(target=gateway, rate=40, duration=600)) as load:
    load.mark("rollout started")
    roll_out()
    load.mark("rollout done")
rollout = load.report.between("rollout started", "rollout done")
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from types import TracebackType

from loadgen.plan import LoadPlan
from loadgen.report import LoadReport, SecondStats
from loadgen.traffic import run_load

# Beyond the plan's own setup time: starting the thread and its event loop.
START_MARGIN_SECONDS = 10.0


class LoadInBackground:
    """Runs ``run_load(plan)`` on its own thread and event loop while the caller goes on.

    Entering waits until the users exist and traffic has started (raising SetupError if they
    cannot be created); leaving stops the traffic, waits for the last answers and re-raises
    anything the run raised. ``on_second`` is called on the load's thread.
    """

    def __init__(
        self, plan: LoadPlan, *, on_second: Callable[[SecondStats], None] | None = None
    ) -> None:
        self.plan = plan
        self._on_second = on_second
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="loadgen", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._started_at: float | None = None
        self._marks: list[tuple[str, float]] = []
        self._report: LoadReport | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> LoadInBackground:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._thread.join()
        if exc is None and self._error is not None:
            raise self._error

    def start(self) -> None:
        """Start the thread; return once traffic runs (or raise what stopped it from starting)."""
        self._thread.start()
        if not self._started.wait(self.plan.setup_timeout + START_MARGIN_SECONDS):
            self.stop()
            raise TimeoutError("the load did not start; its users could not be created in time")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def stop(self) -> None:
        """Stop sending (from any thread); the answers still due are awaited on exit."""
        with self._lock:
            self._stop_requested = True
            if self._loop is not None and self._stop_event is not None:
                # RuntimeError: the loop has already finished, nothing left to stop.
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._stop_event.set)

    def wait(self, timeout: float | None = None) -> LoadReport:
        """Wait until the plan's traffic ends by itself (duration or count), then the report."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the load still runs after {timeout} s")
        if self._error is not None:
            raise self._error
        return self.report

    @property
    def running(self) -> bool:
        """Whether the load's thread is still sending or waiting for answers."""
        return self._thread.is_alive()

    def elapsed(self) -> float:
        """Seconds since traffic started (the clock of the results' offsets and of the marks)."""
        if self._started_at is None:
            return 0.0
        return time.monotonic() - self._started_at

    def mark(self, label: str) -> float:
        """Note that ``label`` happened now, e.g. "rollout started"; returns its offset (s)."""
        offset = self.elapsed()
        with self._lock:
            self._marks.append((label, offset))
            if self._report is not None:
                self._report.marks.append((label, offset))
        return offset

    @property
    def report(self) -> LoadReport:
        """The run's report, with the marks; RuntimeError until the run has finished."""
        if self._report is None:
            raise RuntimeError("the load is still running: leave the with block or call wait()")
        return self._report

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # handed to the caller's thread
            self._error = error
        finally:
            self._started.set()

    def _on_start(self, started_at: float) -> None:
        self._started_at = started_at
        self._started.set()

    async def _run(self) -> None:
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()
            if self._stop_requested:
                self._stop_event.set()
        report = await run_load(
            self.plan, stop=self._stop_event, on_second=self._on_second, on_start=self._on_start
        )
        with self._lock:
            report.marks.extend(self._marks)
            self._report = report
