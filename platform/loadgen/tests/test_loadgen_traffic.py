"""Open-loop traffic against the local stand-in gateway: schedule, mix, caps, stop, setup."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import pytest

from loadgen.background import LoadInBackground
from loadgen.outcomes import Outcome
from loadgen.plan import LoadPlan
from loadgen.report import SecondStats
from loadgen.traffic import ORDER_PATH, ORDERS_PATH, run_load
from loadgen.users import RETRY_PAUSE_SECONDS, SetupError

FLAKY_REGISTRATIONS = 2  # conftest's stand-in answers 503 that often first


def stats(fake_gateway: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{fake_gateway}/stats", timeout=5) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


async def test_a_steady_run_sends_the_mix_and_reads_back_its_own_orders(
    fake_gateway: str,
) -> None:
    before = await asyncio.to_thread(stats, fake_gateway)
    seconds: list[SecondStats] = []
    plan = LoadPlan(target=f"{fake_gateway}/ok", rate=40, duration=1.5, users=2)
    report = await run_load(plan, on_second=seconds.append)
    after = await asyncio.to_thread(stats, fake_gateway)

    assert report.passed, report.summary()
    assert report.counts["ok"] == len(report.results) == 60
    assert report.methods == {"POST": 12, "GET": 48}
    paths = {r.path for r in report.results}
    assert paths == {ORDERS_PATH, ORDER_PATH}
    # Every GET of an order found it (the stand-in answers 404 to any other token's order).
    assert after["orders"] - before["orders"] == len(report.order_ids) == 12
    assert after["gets"] - before["gets"] == 48
    assert after["registered"] - before["registered"] == 2
    assert report.achieved_rate == pytest.approx(40, rel=0.05)
    assert sum(s.sent for s in seconds) == 60
    assert sum(s.ok for s in seconds) == 60
    assert [s.second for s in seconds] == list(range(len(seconds)))


async def test_a_slow_server_raises_latency_not_the_number_sent(fake_gateway: str) -> None:
    plan = LoadPlan(target=f"{fake_gateway}/slow", rate=40, duration=1, users=2)
    report = await run_load(plan)
    overall = report.overall()
    assert len(report.results) == 40
    assert report.passed, report.summary()
    assert overall.p50_ms is not None
    assert overall.p50_ms >= 250
    # Open loop: requests kept starting every 25 ms while earlier ones waited 250 ms.
    starts = [r.offset for r in report.results]
    assert starts[-1] == pytest.approx(39 / 40, abs=0.05)
    assert report.elapsed >= report.sending_seconds + 0.2


async def test_beyond_max_in_flight_requests_are_dropped_not_delayed(fake_gateway: str) -> None:
    plan = LoadPlan(target=f"{fake_gateway}/slow", rate=100, duration=0.5, max_in_flight=5)
    report = await run_load(plan)
    dropped = [r for r in report.results if r.outcome is Outcome.DROPPED]
    assert len(report.results) == 50
    assert 25 <= len(dropped) <= 45
    assert report.counts["ok"] + len(dropped) == 50
    assert not report.passed
    assert dropped[0].latency is None
    assert "too many in flight: 5" in dropped[0].error


async def test_timeouts_and_server_errors_are_recorded_with_their_details(
    fake_gateway: str,
) -> None:
    slow = LoadPlan(target=f"{fake_gateway}/slow", rate=20, duration=0.5, timeout=0.1)
    timed_out = await run_load(slow)
    assert timed_out.counts["timeout"] == 10
    assert all(r.latency is not None and r.latency >= 0.1 for r in timed_out.results)

    broken = LoadPlan(target=f"{fake_gateway}/broken", rate=20, duration=0.5, post_ratio=1)
    failed = (await run_load(broken)).failed
    assert len(failed) == 10
    first = failed[0]
    assert (first.method, first.path, first.outcome, first.status) == (
        "POST", ORDERS_PATH, Outcome.SERVER_ERROR, 503,
    )  # fmt: skip
    assert "order is unavailable" in first.error


async def test_stop_ends_the_run_early(fake_gateway: str) -> None:
    stop = asyncio.Event()
    plan = LoadPlan(target=f"{fake_gateway}/ok", rate=50, duration=30)
    running = asyncio.create_task(run_load(plan, stop=stop))
    await asyncio.sleep(0.8)
    stop.set()
    report = await asyncio.wait_for(running, 5)
    assert report.stopped_early
    assert 20 <= len(report.results) <= 45
    assert report.sending_seconds < 2


async def test_registration_waits_while_auth_answers_503(fake_gateway: str) -> None:
    plan = LoadPlan(target=f"{fake_gateway}/flaky-1", rate=10, duration=0.3, users=1)
    started = time.monotonic()
    report = await run_load(plan)
    assert report.passed
    # Each 503 is followed by a pause of RETRY_PAUSE_SECONDS before the next try.
    assert time.monotonic() - started >= FLAKY_REGISTRATIONS * RETRY_PAUSE_SECONDS


async def test_registration_gives_up_after_the_setup_time(fake_gateway: str) -> None:
    plan = LoadPlan(target=f"{fake_gateway}/authdown", rate=10, duration=1, setup_timeout=0.6)
    with pytest.raises(SetupError, match=r"auth is not ready.*answered 503"):
        await run_load(plan)


def test_load_in_the_background_marks_events(fake_gateway: str) -> None:
    seconds: list[SecondStats] = []
    plan = LoadPlan(target=f"{fake_gateway}/ok", rate=40, duration=30)
    with LoadInBackground(plan, on_second=seconds.append) as load:
        time.sleep(0.5)
        started = load.mark("rollout started")
        time.sleep(0.5)
        done = load.mark("rollout done")
        time.sleep(0.3)
    report = load.report
    assert 0.4 < started < done < load.elapsed()
    assert report.stopped_early
    assert report.passed, report.summary()
    assert [label for label, _ in report.marks] == ["rollout started", "rollout done"]
    rollout = report.between("rollout started", "rollout done")
    assert abs(rollout.count - plan.rate * (done - started)) <= 3
    assert rollout.failed == 0
    assert seconds
    assert "mark t=" in report.summary()


def test_load_in_the_background_raises_when_it_cannot_start(fake_gateway: str) -> None:
    plan = LoadPlan(target=f"{fake_gateway}/authdown", rate=10, duration=1, setup_timeout=0.5)
    with pytest.raises(SetupError), LoadInBackground(plan):
        pass
