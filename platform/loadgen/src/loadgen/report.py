"""What a run recorded, and the numbers a caller compares: counts, percentiles, time windows."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from loadgen.outcomes import Outcome
from loadgen.plan import LoadPlan

FAILURES_KEPT = 100
FAILURES_SHOWN = 10


@dataclass(frozen=True, slots=True)
class RequestResult:
    """One request: when it started (s since the run began), what it was and how it ended.

    ``latency`` is None for a dropped request (never sent); a timed-out one counts its timeout.
    ``status`` is the HTTP status of an answer; ``error`` the start of the body of an answer that
    is not ok, or the exception of a request that raised (its type name first).
    """

    offset: float
    method: str
    path: str
    outcome: Outcome
    status: int | None = None
    error: str = ""
    latency: float | None = None

    def line(self) -> str:
        """The request as one readable line, e.g. ``t=1.204s POST /api/orders reset: ...``."""
        detail = " ".join(part for part in (str(self.status or ""), self.error) if part)
        return f"t={self.offset:.3f}s {self.method} {self.path} {self.outcome}: {detail}"


@dataclass(frozen=True)
class SecondStats:
    """Counts of one second of a run; ``p99_ms`` is None when nothing finished in it.

    In the report (``LoadReport.per_second``) a request belongs to the second it started in. The
    live ``on_second`` callback cannot wait for late answers: there ``sent`` counts the requests
    started in the second and ``ok``, ``client_error``, ``failed`` and ``p99_ms`` those that
    finished in it, so a stall shows at once as sent without ok.
    """

    second: int
    sent: int
    ok: int
    client_error: int
    failed: int
    p99_ms: float | None

    def line(self) -> str:
        """E.g. ``t=12s sent=50 ok=50 failed=0 p99=23ms``."""
        p99 = "-" if self.p99_ms is None else f"{self.p99_ms:.0f}ms"
        client = f" client_error={self.client_error}" if self.client_error else ""
        return (
            f"t={self.second}s sent={self.sent} ok={self.ok}{client} failed={self.failed} p99={p99}"
        )


@dataclass(frozen=True)
class WindowStats:
    """The requests that started in [t0, t1): outcome counts and latency percentiles (ms).

    Latencies are those of every request sent (dropped ones were not), failures included: a
    timeout counts as its timeout, so a stall raises the percentiles. None when there are none.
    """

    t0: float
    t1: float
    count: int
    ok: int
    failed: int
    counts: dict[str, int]
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def stats_of(results: Iterable[RequestResult], t0: float, t1: float) -> WindowStats:
    """Window statistics of ``results`` (any recorded requests) that started in [t0, t1)."""
    chosen = [r for r in results if t0 <= r.offset < t1]
    counts = Counter(r.outcome for r in chosen)
    latencies = sorted(r.latency * 1000 for r in chosen if r.latency is not None)
    return WindowStats(
        t0=t0,
        t1=t1,
        count=len(chosen),
        ok=counts[Outcome.OK],
        failed=sum(n for outcome, n in counts.items() if outcome.failed),
        counts={outcome.value: counts[outcome] for outcome in Outcome},
        p50_ms=percentile(latencies, 0.5),
        p90_ms=percentile(latencies, 0.9),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else None,
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@dataclass
class LoadReport:
    """Everything a run recorded; ``results`` are in the order the requests started.

    ``sending_seconds`` is how long requests were being started (the rate achieved is
    ``len(results) / sending_seconds``), ``elapsed`` includes waiting for the last answers.
    ``order_ids`` are the orders the run placed; ``marks`` the events a caller marked
    (label, seconds since the start), e.g. ``("rollout started", 12.3)``; ``setup_seconds`` how
    long creating the users took, before the start.
    """

    plan: LoadPlan
    results: list[RequestResult]
    sending_seconds: float
    elapsed: float
    stopped_early: bool = False
    order_ids: list[str] = field(default_factory=list)
    marks: list[tuple[str, float]] = field(default_factory=list)
    setup_seconds: float = 0.0

    @property
    def failed(self) -> list[RequestResult]:
        """Every failed request (server_error, refused, reset, timeout, other, dropped)."""
        return [r for r in self.results if r.outcome.failed]

    @property
    def passed(self) -> bool:
        """Whether no request failed (client errors do not fail a run)."""
        return not any(r.outcome.failed for r in self.results)

    @property
    def counts(self) -> dict[str, int]:
        """How many requests ended in each outcome class (every class, zeros included)."""
        counts = Counter(r.outcome for r in self.results)
        return {outcome.value: counts[outcome] for outcome in Outcome}

    @property
    def methods(self) -> dict[str, int]:
        """How many requests of each HTTP method were due, e.g. ``{"GET": 80, "POST": 20}``."""
        return dict(Counter(r.method for r in self.results))

    @property
    def achieved_rate(self) -> float:
        """Requests started (or dropped) per second while the run was sending."""
        return len(self.results) / self.sending_seconds if self.sending_seconds > 0 else 0.0

    def window(self, t0: float, t1: float) -> WindowStats:
        """Statistics of the requests that started in [t0, t1) (seconds since the start)."""
        return stats_of(self.results, t0, t1)

    def overall(self) -> WindowStats:
        """Statistics of the whole run."""
        return stats_of(self.results, 0.0, math.inf)

    def mark(self, label: str) -> float:
        """The offset of the first mark called ``label`` (KeyError when there is none)."""
        for name, offset in self.marks:
            if name == label:
                return offset
        raise KeyError(f"no mark {label!r}; the marks are {[name for name, _ in self.marks]}")

    def between(self, start_label: str, end_label: str) -> WindowStats:
        """Statistics of the requests started between two marks, e.g. a rollout's."""
        return self.window(self.mark(start_label), self.mark(end_label))

    def per_second(self) -> list[SecondStats]:
        """One entry per second of the run, each request in the second it started in."""
        seconds = max(math.ceil(self.sending_seconds), 1)
        buckets: list[list[RequestResult]] = [[] for _ in range(seconds)]
        for result in self.results:
            buckets[min(int(result.offset), seconds - 1)].append(result)
        stats: list[SecondStats] = []
        for second, bucket in enumerate(buckets):
            latencies = [r.latency * 1000 for r in bucket if r.latency is not None]
            stats.append(
                SecondStats(
                    second=second,
                    sent=len(bucket),
                    ok=sum(r.outcome is Outcome.OK for r in bucket),
                    client_error=sum(r.outcome is Outcome.CLIENT_ERROR for r in bucket),
                    failed=sum(r.outcome.failed for r in bucket),
                    p99_ms=percentile(latencies, 0.99),
                )
            )
        return stats

    def _breakdown(self, outcome: Outcome) -> str:
        details = Counter(
            str(r.status) if r.status is not None else r.error.partition(":")[0]
            for r in self.results
            if r.outcome is outcome
        )
        return ", ".join(f"{detail}: {n}" for detail, n in details.most_common(5))

    def summary(self) -> str:
        """A few readable lines: sent, rate, outcome counts, latency percentiles, first failures."""
        overall = self.overall()
        methods = " ".join(f"{n} {method}" for method, n in sorted(self.methods.items()))
        early = ", stopped early" if self.stopped_early else ""
        users = f"{self.plan.users} user" + ("s" if self.plan.users != 1 else "")
        outcomes = [
            f"{outcome}={n}" + ("" if outcome is Outcome.OK else f" ({self._breakdown(outcome)})")
            for outcome in Outcome
            if (n := overall.counts[outcome])
        ]
        failed = self.failed
        lines = [
            f"loadgen: {len(self.results)} requests ({methods}) to {self.plan.target} in "
            f"{self.sending_seconds:.1f} s: {self.achieved_rate:.1f}/s of {self.plan.rate:g}/s "
            f"planned{early} ({users}, set up in {self.setup_seconds:.1f} s)",
            "outcomes: " + (", ".join(outcomes) or "none"),
            f"latency ms: p50={_ms(overall.p50_ms)} p90={_ms(overall.p90_ms)} "
            f"p99={_ms(overall.p99_ms)} max={_ms(overall.max_ms)}",
            f"failed: {len(failed)}",
        ]
        if overall.counts[Outcome.CLIENT_ERROR]:
            lines[-1] += " (client errors do not fail a run)"
        lines.extend(f"  {r.line()}" for r in failed[:FAILURES_SHOWN])
        if len(failed) > FAILURES_SHOWN:
            lines.append(f"  ... and {len(failed) - FAILURES_SHOWN} more")
        for label, offset in self.marks:
            lines.append(f"mark t={offset:.3f}s {label}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data: plan, counts, latencies, seconds, first 100 failures."""
        failed = self.failed
        overall = self.overall()
        return {
            "plan": asdict(self.plan),
            "sent": len(self.results),
            "sending_seconds": self.sending_seconds,
            "elapsed_seconds": self.elapsed,
            "setup_seconds": self.setup_seconds,
            "achieved_rate": self.achieved_rate,
            "stopped_early": self.stopped_early,
            "passed": self.passed,
            "counts": self.counts,
            "methods": self.methods,
            "latency_ms": {
                "count": overall.count - overall.counts[Outcome.DROPPED],
                "p50": overall.p50_ms,
                "p90": overall.p90_ms,
                "p99": overall.p99_ms,
                "max": overall.max_ms,
            },
            "per_second": [asdict(second) for second in self.per_second()],
            "failed": len(failed),
            "failures": [asdict(r) for r in failed[:FAILURES_KEPT]],
            "failures_left_out": max(len(failed) - FAILURES_KEPT, 0),
            "orders_placed": len(self.order_ids),
            "marks": [{"label": label, "offset": offset} for label, offset in self.marks],
        }
