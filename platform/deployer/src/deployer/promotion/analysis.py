"""The metric analysis gate: the upstream's pods over the soak, judged by the canary's rules
(the thresholds alone: there is no baseline to compare with). No traffic proves nothing: it is
inconclusive and the gate keeps waiting; it never passes."""

from __future__ import annotations

from datetime import datetime

from deploy_contract.promotions import Gate, GateResult, GateVerdict
from deployer.adapters.prometheus import PrometheusError
from deployer.canary.analysis import Thresholds, Track, TrackNumbers, TrackSource, Verdict, judge
from deployer.promotion.environments import AnalysisRules


def thresholds_of(rules: AnalysisRules) -> Thresholds:
    """The canary thresholds the rules set (the comparisons with a baseline do not apply)."""
    return Thresholds(
        min_success_rate=rules.min_success_rate,
        max_p99_seconds=rules.max_p99_seconds,
        min_requests=rules.min_requests,
        max_handler_failures=rules.max_handler_failures,
        max_dead_letters=rules.max_dead_letters,
    )


def _numbers(numbers: TrackNumbers) -> dict[str, float | None]:
    return {
        "requests": round(numbers.requests, 1),
        "success_rate": numbers.success_rate,
        "p99_seconds": numbers.p99_seconds,
        "deliveries": round(numbers.deliveries, 1),
        "handler_failures": round(numbers.handler_failures, 1),
        "dead_letters": round(numbers.dead_letters, 1),
    }


async def analyse_upstream(
    source: TrackSource | None,
    namespace: str,
    environment: str,
    service: str,
    window_seconds: float,
    rules: AnalysisRules,
    now: datetime,
) -> GateResult:
    """The analysis of ``service`` in ``environment`` (its ``namespace``) over the
    ``window_seconds`` before ``now``."""

    def result(verdict: GateVerdict, reason: str, **evidence: object) -> GateResult:
        return GateResult(
            gate=Gate.ANALYSIS, verdict=verdict, reason=reason, evidence=evidence, decided_at=now
        )

    if source is None:
        return result(
            GateVerdict.WAITING,
            "no Prometheus to measure with (set DEPLOYER_PROMETHEUS_URL): inconclusive",
        )
    thresholds = thresholds_of(rules)
    try:
        numbers = await source(namespace, service, Track.STABLE, window_seconds, now.timestamp())
    except (PrometheusError, ValueError) as exc:
        return result(GateVerdict.WAITING, f"Prometheus could not be asked: {exc}")
    judged = judge(numbers, TrackNumbers(), thresholds, window_seconds)
    evidence = {
        "window_seconds": window_seconds,
        "numbers": _numbers(numbers),
        "thresholds": rules.model_dump(by_alias=True),
    }
    where = f"{service} in {environment} over {window_seconds:g} s"
    if judged.verdict is Verdict.FAIL:
        return result(GateVerdict.FAILED, f"{where}: " + "; ".join(judged.broken), **evidence)
    if judged.verdict is Verdict.INCONCLUSIVE:
        return result(
            GateVerdict.WAITING,
            f"{where}: {round(numbers.requests)} requests and {round(numbers.deliveries)} event "
            f"deliveries, fewer than {rules.min_requests}: inconclusive (never a pass)",
            **evidence,
        )
    shown = [f"{round(numbers.requests)} requests"]
    if numbers.success_rate is not None:
        shown.append(f"success rate {numbers.success_rate * 100:.2f}%")
    if numbers.p99_seconds is not None:
        shown.append(f"p99 {numbers.p99_seconds * 1000:.0f} ms")
    return result(GateVerdict.PASSED, f"{where}: healthy, " + ", ".join(shown), **evidence)
