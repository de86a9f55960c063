"""Flotilla's load generator: steady open-loop traffic through the gateway, loopback only.

The library API for tests, the demo and the benchmarks::

    report = await run_load(LoadPlan(target="http://127.0.0.1:8000", rate=40, duration=3))
    assert report.passed, report.summary()

and :class:`LoadInBackground` for synchronous callers.
"""

from loadgen.background import LoadInBackground
from loadgen.outcomes import Outcome, classify_error, classify_status
from loadgen.plan import DEFAULT_TARGET, LoadPlan, PlanError, is_loopback_host, loopback_target
from loadgen.report import LoadReport, RequestResult, SecondStats, WindowStats, percentile
from loadgen.traffic import run_load
from loadgen.users import SetupError

__all__ = [
    "DEFAULT_TARGET",
    "LoadInBackground",
    "LoadPlan",
    "LoadReport",
    "Outcome",
    "PlanError",
    "RequestResult",
    "SecondStats",
    "SetupError",
    "WindowStats",
    "classify_error",
    "classify_status",
    "is_loopback_host",
    "loopback_target",
    "percentile",
    "run_load",
]
