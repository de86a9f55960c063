"""Percentiles, time windows, per-second series and the summary, from recorded results."""

from __future__ import annotations

import json

import pytest

from loadgen.outcomes import Outcome
from loadgen.plan import LoadPlan
from loadgen.report import LoadReport, RequestResult, percentile


def result(offset: float, latency_ms: float | None, outcome: Outcome = Outcome.OK) -> RequestResult:
    latency = None if latency_ms is None else latency_ms / 1000
    status = {Outcome.OK: 200, Outcome.SERVER_ERROR: 503, Outcome.CLIENT_ERROR: 429}.get(outcome)
    error = "ServerDisconnectedError: Server disconnected" if outcome is Outcome.RESET else ""
    return RequestResult(offset, "GET", "/api/orders/{id}", outcome, status, error, latency)


def report_of(results: list[RequestResult], seconds: float = 3.0) -> LoadReport:
    plan = LoadPlan(rate=len(results) / seconds, duration=seconds)
    return LoadReport(plan=plan, results=results, sending_seconds=seconds, elapsed=seconds + 0.1)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7
    assert percentile([], 0.5) is None


def test_a_window_holds_the_requests_started_in_it_and_their_percentiles() -> None:
    steady = [result(i / 10, 10) for i in range(10)]  # second 0: 10 ms each
    rollout = [result(1 + i / 10, 100 + i) for i in range(8)] + [
        result(1.8, 5000, Outcome.TIMEOUT),
        result(1.9, None, Outcome.DROPPED),
    ]
    after = [result(2 + i / 10, 12) for i in range(10)]
    report = report_of(steady + rollout + after)

    window = report.window(1.0, 2.0)
    assert (window.count, window.ok, window.failed) == (10, 8, 2)
    assert window.counts["timeout"] == window.counts["dropped"] == 1
    # Nine latencies (the dropped request was never sent): the timeout is the slowest.
    assert (window.p50_ms, window.max_ms) == (104, 5000)
    assert window.p99_ms == 5000
    steady_state = report.window(0.0, 1.0)
    assert (steady_state.failed, steady_state.p99_ms) == (0, 10)
    assert report.window(5.0, 6.0).count == 0
    assert report.window(5.0, 6.0).p50_ms is None


def test_per_second_buckets_count_each_request_in_the_second_it_started() -> None:
    results = [result(0.5, 10), result(0.9, 30), result(1.2, None, Outcome.DROPPED)]
    results += [result(2.5, 20, Outcome.CLIENT_ERROR)]
    seconds = report_of(results).per_second()
    assert [(s.second, s.sent, s.ok, s.client_error, s.failed) for s in seconds] == [
        (0, 2, 2, 0, 0),
        (1, 1, 0, 0, 1),
        (2, 1, 0, 1, 0),
    ]
    assert [s.p99_ms for s in seconds] == [30, None, 20]
    assert seconds[0].line() == "t=0s sent=2 ok=2 failed=0 p99=30ms"
    assert seconds[1].line() == "t=1s sent=1 ok=0 failed=1 p99=-"


def test_marks_name_windows() -> None:
    report = report_of([result(i / 10, 10 + i) for i in range(30)])
    report.marks.extend([("rollout started", 1.0), ("rollout done", 2.0)])
    assert report.mark("rollout done") == 2.0
    assert report.between("rollout started", "rollout done") == report.window(1.0, 2.0)
    with pytest.raises(KeyError, match="no mark 'nope'"):
        report.mark("nope")


def test_counts_failures_summary_and_json() -> None:
    results = [result(i / 10, 10) for i in range(20)]
    results += [result(2.1, 3, Outcome.RESET), result(2.2, 40, Outcome.SERVER_ERROR)]
    results += [result(2.3, 8, Outcome.CLIENT_ERROR)]
    report = report_of(results)

    assert not report.passed
    assert report.counts == {
        "ok": 20, "client_error": 1, "server_error": 1, "refused": 0, "reset": 1,
        "timeout": 0, "other": 0, "dropped": 0,
    }  # fmt: skip
    assert [r.outcome for r in report.failed] == [Outcome.RESET, Outcome.SERVER_ERROR]
    summary = report.summary()
    assert "23 requests (23 GET)" in summary
    assert "7.7/s of 7.66667/s planned" in summary
    assert "reset=1 (ServerDisconnectedError: 1)" in summary
    assert "server_error=1 (503: 1)" in summary
    assert "failed: 2 (client errors do not fail a run)" in summary
    assert "t=2.100s GET /api/orders/{id} reset: ServerDisconnectedError" in summary

    data = json.loads(json.dumps(report.to_json()))
    assert data["sent"] == 23
    assert data["failed"] == 2
    assert data["failures"][1]["status"] == 503
    assert data["counts"]["ok"] == 20
    assert data["latency_ms"]["max"] == 40
    assert len(data["per_second"]) == 3


def test_a_clean_run_passes() -> None:
    report = report_of([result(i / 10, 10) for i in range(30)])
    assert report.passed
    assert report.failed == []
    assert "failed: 0" in report.summary()
