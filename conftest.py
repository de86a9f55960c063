"""Fixtures and rules shared by every test suite in the workspace."""

import os

import pytest

pytest_plugins = [
    "devkit.testing.fixtures",
    "devkit.testing.suitetimes",
    "devkit.testing.workers",
    "tests.e2e.cluster_fixtures",
]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every suite can run on the CI machine (decided once,
    by the controller of a run with workers, which sees every worker's reports)."""
    if hasattr(session.config, "workerinput"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if reporter is not None and os.environ.get("CI") == "true" and skipped:
        reporter.write_line(
            f"CI=true: {skipped} test(s) were skipped; CI must run every suite. "
            "Install what the skipped tests need in `make setup` instead of skipping them.",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
