"""canary_strategy(): the merged chart values of a canary, validated by StrategyValues and turned
into typed steps and analysis settings."""

from __future__ import annotations

from typing import Any

import pytest

from deployer.canary.analysis import Thresholds
from deployer.canary.strategy import AnalysisSettings, Step, canary_strategy


def canary(**values: Any) -> dict[str, Any]:
    """Merged values whose strategy is a canary of ``values``."""
    return {"strategy": {"type": "canary", "canary": values}}


def test_rolling_is_no_canary() -> None:
    assert canary_strategy({}) is None
    assert canary_strategy({"strategy": {"type": "rolling", "canary": {"steps": []}}}) is None


def test_steps_and_defaults() -> None:
    strategy = canary_strategy(
        canary(steps=[{"setWeight": 25}, {"pause": None}, {"pause": {"seconds": 30}},
                      {"analysis": {}}, {"analysis": {"count": 5}}])
    )  # fmt: skip
    assert strategy is not None
    assert strategy.steps == (
        Step("weight", weight=25),
        Step("pause"),
        Step("pause", seconds=30),
        Step("analysis"),
        Step("analysis", count=5),
    )
    assert strategy.analysis == AnalysisSettings(30, 3, 1, 2, Thresholds())
    assert strategy.describe() == (
        "weight 25% → pause until promoted → pause 30 s → analysis → analysis x5 → promote"
    )


def test_analysis_values_become_settings() -> None:
    strategy = canary_strategy(
        canary(
            steps=[{"setWeight": 50}],
            analysis={"intervalSeconds": 10, "p99Milliseconds": 250, "successRate": 1},
        )
    )
    assert strategy is not None
    assert strategy.analysis.interval_seconds == 10
    assert strategy.analysis.thresholds == Thresholds(min_success_rate=1.0, max_p99_seconds=0.25)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"steps": []}, r"strategy\.canary\.steps: List should have at least 1 item"),
        ({}, r"strategy\.canary\.steps: Field required"),
        ({"steps": [{"pause": {}}]}, "the first step must be a setWeight"),
        (
            {"steps": [{"setWeight": 10, "pause": {}}]},
            "exactly one of setWeight, pause or analysis",
        ),
        ({"steps": [{"setWeight": 0}]}, r"steps\.0\.setWeight: Input should be greater than"),
        ({"steps": [{"setWeight": 10}], "analysis": {"intervalSecond": 5}}, "intervalSecond"),
    ],
)
def test_an_invalid_canary_is_refused_naming_the_value(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        canary_strategy(canary(**values))
