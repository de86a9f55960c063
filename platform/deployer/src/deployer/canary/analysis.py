"""The canary's metric gate: the canary pods' numbers over a window, judged against thresholds
and against the stable pods over the same window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

# Differences of fractions (0.99 - 0.98 is 0.010000000000000009) must not break a threshold
# they only touch.
_TOLERANCE = 1e-9
# Below this p99 the canary-to-stable latency ratio is noise (1 ms against 0.4 ms is "2.5 times").
RATIO_FLOOR_SECONDS = 0.05


class Track(StrEnum):
    """Which pods of a service: the value of their ``track`` label in Prometheus."""

    CANARY = "canary"
    STABLE = "stable"


@dataclass(frozen=True)
class Thresholds:
    """What a healthy canary looks like."""

    min_success_rate: float = 0.99
    """Share of the canary's HTTP requests that did not answer 5xx."""
    max_p99_seconds: float = 0.5
    max_success_rate_drop: float = 0.01
    """How far the canary's success rate may be below the stable's (when the stable had traffic)."""
    max_p99_ratio: float = 2.0
    """Canary p99 at most this times the stable's (when the stable had traffic and the canary's
    p99 is at least RATIO_FLOOR_SECONDS)."""
    min_requests: int = 10
    """Fewer HTTP requests and fewer event deliveries than this: the window proves nothing."""
    max_handler_failures: int = 0
    """Event deliveries whose handler failed (outcome retry or dead_lettered)."""
    max_dead_letters: int = 0


@dataclass(frozen=True)
class TrackNumbers:
    """One track's numbers over a window; the defaults are a track without any traffic."""

    requests: float = 0.0
    """HTTP requests (probes and /metrics excluded)."""
    success_rate: float | None = None
    """Share of those requests that did not answer 5xx; None without requests."""
    p99_seconds: float | None = None
    deliveries: float = 0.0
    """Event deliveries handled, whatever their outcome."""
    handler_failures: float = 0.0
    dead_letters: float = 0.0


class Verdict(StrEnum):
    """What the analysis concludes about the canary."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Measurement:
    """A judged window: the verdict, the numbers behind it and why."""

    verdict: Verdict
    canary: TrackNumbers
    stable: TrackNumbers
    window_seconds: float
    broken: tuple[str, ...]
    """One sentence per broken threshold, naming the measured value and the threshold."""
    reason: str
    """The verdict in one line."""
    thresholds: Thresholds


# Where a track's numbers come from: (namespace, service, track, window_seconds, at) -> the
# track's numbers over the window before ``at`` (deployer.adapters.prometheus's numbers()).
TrackSource = Callable[[str, str, str, float, float | None], Awaitable[TrackNumbers]]


def _percent(value: float, decimals: int) -> str:
    return f"{value * 100:.{decimals}f}%"


def _milliseconds(seconds: float, decimals: int) -> str:
    return f"{seconds * 1000:.{decimals}f} ms"


def _apart(value: float, other: float, render: Callable[[float, int], str], base: int) -> str:
    """``value`` rendered with enough decimals not to read the same as ``other``."""
    for decimals in range(base, base + 4):
        if render(value, decimals) != render(other, decimals):
            return render(value, decimals)
    return render(value, base + 3)


def _count(value: float, one: str, many: str) -> str:
    number = round(value)
    return f"{number} {one if number == 1 else many}"


def _window(seconds: float) -> str:
    return f"{seconds:g} s"


def _rate_sentences(canary: TrackNumbers, stable: TrackNumbers, t: Thresholds) -> list[str]:
    """The HTTP thresholds the canary broke (its requests are enough to judge)."""
    broken: list[str] = []
    stable_had_traffic = stable.requests >= t.min_requests
    rate = canary.success_rate
    if rate is not None and rate < t.min_success_rate:
        shown = _apart(rate, t.min_success_rate, _percent, 1)
        broken.append(
            f"success rate {shown} is below the threshold {_percent(t.min_success_rate, 1)}"
        )
    if rate is not None and stable_had_traffic and stable.success_rate is not None:
        drop = stable.success_rate - rate
        if drop > t.max_success_rate_drop + _TOLERANCE:
            broken.append(
                f"success rate {_apart(rate, stable.success_rate, _percent, 1)} is "
                f"{drop * 100:.1f} points below the stable pods' "
                f"{_apart(stable.success_rate, rate, _percent, 1)} "
                f"(allowed: {t.max_success_rate_drop * 100:.1f})"
            )
    p99 = canary.p99_seconds
    if p99 is not None and p99 > t.max_p99_seconds:
        shown = _apart(p99, t.max_p99_seconds, _milliseconds, 0)
        broken.append(f"p99 {shown} is above the threshold {_milliseconds(t.max_p99_seconds, 0)}")
    stable_p99 = stable.p99_seconds
    if (
        p99 is not None
        and p99 >= RATIO_FLOOR_SECONDS
        and stable_had_traffic
        and stable_p99 is not None
        and stable_p99 > 0
        and p99 > t.max_p99_ratio * stable_p99 + _TOLERANCE
    ):
        broken.append(
            f"p99 {_milliseconds(p99, 0)} is {p99 / stable_p99:.1f} times the stable pods' "
            f"{_apart(stable_p99, p99, _milliseconds, 0)} (allowed: {t.max_p99_ratio:g} times)"
        )
    return broken


def _event_sentences(canary: TrackNumbers, t: Thresholds) -> list[str]:
    """The event-handling thresholds the canary broke: failures count whatever the traffic."""
    broken: list[str] = []
    if round(canary.handler_failures) > t.max_handler_failures:
        failed = _count(canary.handler_failures, "event delivery", "event deliveries")
        broken.append(
            f"{failed} failed in the handler (retried or dead-lettered), above the threshold "
            f"{t.max_handler_failures}"
        )
    if round(canary.dead_letters) > t.max_dead_letters:
        broken.append(
            f"{_count(canary.dead_letters, 'event', 'events')} dead-lettered, above the "
            f"threshold {t.max_dead_letters}"
        )
    return broken


def _traffic(numbers: TrackNumbers) -> str:
    parts = [_count(numbers.requests, "request", "requests")]
    if numbers.deliveries > 0:
        parts.append(_count(numbers.deliveries, "event delivery", "event deliveries"))
    return " and ".join(parts)


def _inconclusive_reason(
    canary: TrackNumbers, t: Thresholds, window_seconds: float, serves_http: bool
) -> str:
    quiet = round(canary.requests) == 0 and round(canary.deliveries) == 0
    if serves_http and canary.deliveries >= t.min_requests:
        needed = f"at least {t.min_requests} requests needed: the stable pods answer requests"
        quiet = round(canary.requests) == 0
        return (
            f"{'no' if quiet else 'too little'} HTTP traffic on the canary: {_traffic(canary)} "
            f"in {_window(window_seconds)} ({needed}); the analysis cannot pass without traffic"
        )
    needed = f"at least {t.min_requests}{' of either' if canary.deliveries > 0 else ''} needed"
    return (
        f"{'no' if quiet else 'too little'} traffic on the canary: {_traffic(canary)} in "
        f"{_window(window_seconds)} ({needed}); the analysis cannot pass without traffic"
    )


def _pass_reason(canary: TrackNumbers, t: Thresholds, window_seconds: float) -> str:
    reason = f"canary healthy over {_window(window_seconds)}: {_traffic(canary)}"
    if canary.requests >= t.min_requests:
        if canary.success_rate is not None:
            reason += f", success rate {_percent(canary.success_rate, 1)}"
        if canary.p99_seconds is not None:
            reason += f", p99 {_milliseconds(canary.p99_seconds, 0)}"
    else:
        reason += f" (too few requests for the HTTP checks: fewer than {t.min_requests})"
    return reason


def judge(
    canary: TrackNumbers, stable: TrackNumbers, thresholds: Thresholds, window_seconds: float
) -> Measurement:
    """Judge the canary's numbers of one window.

    Handler failures and dead letters fail the canary whatever its traffic. The HTTP thresholds
    (success rate, p99, and the comparison with the stable pods, made only when the stable had
    at least ``min_requests`` requests) apply when the canary had ``min_requests`` requests. A
    canary with fewer requests and fewer event deliveries than that, and nothing broken, is
    inconclusive: no traffic proves nothing. A consumer-only service (its stable pods had no
    HTTP traffic either) passes on its deliveries; a service whose stable pods answered requests
    needs the canary to have answered some too, whatever it consumed.
    """
    broken = _event_sentences(canary, thresholds)
    enough_requests = canary.requests >= thresholds.min_requests
    serves_http = stable.requests >= thresholds.min_requests
    if enough_requests:
        broken = _rate_sentences(canary, stable, thresholds) + broken
    enough = enough_requests or (not serves_http and canary.deliveries >= thresholds.min_requests)
    if broken:
        count = f"{len(broken)} threshold{'s' if len(broken) > 1 else ''}"
        verdict = Verdict.FAIL
        reason = f"the canary broke {count} in {_window(window_seconds)}: " + "; ".join(broken)
    elif not enough:
        verdict = Verdict.INCONCLUSIVE
        reason = _inconclusive_reason(canary, thresholds, window_seconds, serves_http)
    else:
        verdict = Verdict.PASS
        reason = _pass_reason(canary, thresholds, window_seconds)
    return Measurement(
        verdict=verdict,
        canary=canary,
        stable=stable,
        window_seconds=window_seconds,
        broken=tuple(broken),
        reason=reason,
        thresholds=thresholds,
    )


async def measure(
    numbers: TrackSource,
    namespace: str,
    service: str,
    window_seconds: float,
    thresholds: Thresholds,
) -> Measurement:
    """Fetch the canary's and the stable pods' numbers over the same window (the one that ends
    now) and judge them."""
    at = time.time()
    canary, stable = await asyncio.gather(
        numbers(namespace, service, Track.CANARY, window_seconds, at),
        numbers(namespace, service, Track.STABLE, window_seconds, at),
    )
    return judge(canary, stable, thresholds, window_seconds)
