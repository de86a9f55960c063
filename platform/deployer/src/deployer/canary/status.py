"""A canary's measurements and thresholds as the event contract carries them."""

from __future__ import annotations

from dataclasses import asdict

from deploy_contract.events import CanaryMeasurement, CanaryNumbers
from deployer.canary.analysis import Measurement, Thresholds, TrackNumbers


def _numbers(measured: TrackNumbers) -> CanaryNumbers:
    return CanaryNumbers(**asdict(measured))


def measurement_json(measurement: Measurement) -> CanaryMeasurement:
    """A measurement as the event contract carries it."""
    return CanaryMeasurement(
        verdict=measurement.verdict.value,
        window_seconds=measurement.window_seconds,
        canary=_numbers(measurement.canary),
        stable=_numbers(measurement.stable),
        broken=list(measurement.broken),
        reason=measurement.reason,
    )


def thresholds_json(thresholds: Thresholds) -> dict[str, float]:
    """The thresholds as numbers, named as in the chart values."""
    return {
        "successRate": thresholds.min_success_rate,
        "p99Milliseconds": thresholds.max_p99_seconds * 1000,
        "maxSuccessRateDrop": thresholds.max_success_rate_drop,
        "maxP99Ratio": thresholds.max_p99_ratio,
        "minRequests": thresholds.min_requests,
        "maxHandlerFailures": thresholds.max_handler_failures,
        "maxDeadLetters": thresholds.max_dead_letters,
    }
