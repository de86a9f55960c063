"""A service's rollout strategy, read from its merged chart values (``strategy:``).

The chart's schema has already checked the shape (intake refuses what it refuses), so this only
turns the values into typed steps and the analysis settings; the defaults are the chart's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from deployer.canary.analysis import Thresholds

StepKind = Literal["weight", "pause", "analysis"]


@dataclass(frozen=True)
class Step:
    """One canary step: set a weight, pause (``seconds`` None: until promoted by hand), or
    analyse (``count`` measurements, None: the analysis' count)."""

    kind: StepKind
    weight: int | None = None
    seconds: int | None = None
    count: int | None = None

    def describe(self) -> str:
        """E.g. ``weight 25%``, ``pause 30 s``, ``pause until promoted``, ``analysis x3``."""
        if self.kind == "weight":
            return f"weight {self.weight}%"
        if self.kind == "pause":
            return f"pause {self.seconds} s" if self.seconds is not None else "pause until promoted"
        return f"analysis x{self.count}" if self.count is not None else "analysis"


@dataclass(frozen=True)
class AnalysisSettings:
    """How the canary is measured: one measurement per interval, over that window."""

    interval_seconds: int = 30
    count: int = 3
    failure_limit: int = 1
    inconclusive_limit: int = 2
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class CanaryStrategy:
    """The steps of a canary and how its analysis steps measure."""

    steps: tuple[Step, ...]
    analysis: AnalysisSettings

    def describe(self) -> str:
        """The steps in one line: ``weight 25% → analysis → weight 50% → analysis → promote``."""
        return " → ".join([*(step.describe() for step in self.steps), "promote"])


def _step(raw: Mapping[str, Any]) -> Step:
    if "setWeight" in raw:
        return Step("weight", weight=int(raw["setWeight"]))
    if "pause" in raw:
        seconds = (raw["pause"] or {}).get("seconds")
        return Step("pause", seconds=None if seconds is None else int(seconds))
    if "analysis" in raw:
        count = (raw["analysis"] or {}).get("count")
        return Step("analysis", count=None if count is None else int(count))
    raise ValueError(f"a canary step is setWeight, pause or analysis, not {dict(raw)}")


def _analysis(raw: Mapping[str, Any]) -> AnalysisSettings:
    base, limits = AnalysisSettings(), Thresholds()
    p99 = raw.get("p99Milliseconds")
    thresholds = Thresholds(
        min_success_rate=float(raw.get("successRate", limits.min_success_rate)),
        max_p99_seconds=limits.max_p99_seconds if p99 is None else float(p99) / 1000,
        max_success_rate_drop=float(raw.get("maxSuccessRateDrop", limits.max_success_rate_drop)),
        max_p99_ratio=float(raw.get("maxP99Ratio", limits.max_p99_ratio)),
        min_requests=int(raw.get("minRequests", limits.min_requests)),
        max_handler_failures=int(raw.get("maxHandlerFailures", limits.max_handler_failures)),
        max_dead_letters=int(raw.get("maxDeadLetters", limits.max_dead_letters)),
    )
    return AnalysisSettings(
        interval_seconds=int(raw.get("intervalSeconds", base.interval_seconds)),
        count=int(raw.get("count", base.count)),
        failure_limit=int(raw.get("failureLimit", base.failure_limit)),
        inconclusive_limit=int(raw.get("inconclusiveLimit", base.inconclusive_limit)),
        thresholds=thresholds,
    )


def canary_strategy(values: Mapping[str, Any]) -> CanaryStrategy | None:
    """The canary of these merged values, or None for the rolling update."""
    strategy = values.get("strategy") or {}
    if strategy.get("type", "rolling") != "canary":
        return None
    canary = strategy.get("canary") or {}
    steps = tuple(_step(raw) for raw in canary.get("steps") or ())
    if not steps:
        raise ValueError("strategy.canary.steps is empty: give at least one setWeight step")
    return CanaryStrategy(steps, _analysis(canary.get("analysis") or {}))
