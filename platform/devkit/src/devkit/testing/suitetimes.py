"""A pytest plugin that prints each suite's time at the end of a run, so the test budget stays
visible: a suite is a folder of tests (``tests/realpods``, ``services/order``, ``pipelines/tests``)
and its time is the sum of its tests' setup, call and teardown (shared fixtures included, counted
where they are first set up)."""

from __future__ import annotations

from collections import defaultdict

import pytest

_seconds: defaultdict[str, float] = defaultdict(float)


def suite_of(nodeid: str) -> str:
    """The suite of a test: the first two folders of its file's path (the file itself when it
    is less deep)."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else path


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add each phase of a test to its suite's time."""
    _seconds[suite_of(report.nodeid)] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The suites, slowest first, with their share of the run."""
    if not _seconds:
        return
    total = sum(_seconds.values())
    terminalreporter.section("time per suite")
    for suite, seconds in sorted(_seconds.items(), key=lambda item: -item[1]):
        share = 100 * seconds / total if total else 0.0
        terminalreporter.write_line(f"{seconds:8.1f} s {share:5.1f}%  {suite}")
    terminalreporter.write_line(f"{total:8.1f} s          in all suites")
