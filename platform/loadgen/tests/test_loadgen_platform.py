"""The load generator through the real gateway: NATS and all four services as local processes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devkit.localstack.process import ServiceProcess
from loadgen.plan import LoadPlan
from loadgen.traffic import ORDER_PATH, ORDERS_PATH, run_load
from tests.integration.platform_stack import Platform

SQLITE_PREFIX = "sqlite+aiosqlite:///"


@pytest.fixture(scope="module")
async def platform_stack(
    repo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    stack = Platform(
        repo_root, tmp_path_factory.mktemp("loadgen-platform"), SERVICE_LOG_LEVEL="WARNING"
    )
    try:  # a service that never gets ready must not leave NATS and the others running
        await asyncio.to_thread(start_in_parallel, stack)
        yield stack
    finally:
        await asyncio.to_thread(stop_in_parallel, stack)


def start_in_parallel(stack: Platform) -> None:
    """What Platform.start does, the four services at once: a busy machine starts them faster."""
    stack.nats.start()
    with ThreadPoolExecutor(len(stack.services)) as pool:
        list(pool.map(ServiceProcess.start, stack.services.values()))
    for process in stack.services.values():
        process.wait_until("/readyz", 200)


def stop_in_parallel(stack: Platform) -> None:
    """What Platform.stop does, each service draining at the same time."""
    with ThreadPoolExecutor(len(stack.services)) as pool:
        list(pool.map(ServiceProcess.stop, stack.services.values()))
    stack.nats.stop()


def stored_orders(platform: Platform, order_ids: list[str]) -> dict[str, str]:
    """id -> user_id of those orders in the order service's own database."""
    url = platform.services["order"].env["DATABASE_URL"]
    assert url.startswith(SQLITE_PREFIX), url
    database = Path(url.removeprefix(SQLITE_PREFIX))
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        marks = ",".join("?" * len(order_ids))
        rows = connection.execute(
            f"SELECT id, user_id FROM orders WHERE id IN ({marks})",  # noqa: S608 - placeholders
            order_ids,
        ).fetchall()
    return {str(order_id): str(user_id) for order_id, user_id in rows}


async def test_steady_load_through_the_gateway_fails_no_request(platform_stack: Platform) -> None:
    plan = LoadPlan(target=platform_stack.gateway, rate=40, duration=3)
    report = await run_load(plan)

    assert report.passed, report.summary()
    assert {outcome for outcome, n in report.counts.items() if n} == {"ok"}, report.summary()
    assert len(report.results) == 120
    assert report.methods == {"POST": 24, "GET": 96}
    assert {r.path for r in report.results} == {ORDERS_PATH, ORDER_PATH}
    overall = report.overall()
    assert overall.p99_ms is not None
    assert overall.p99_ms < plan.timeout * 1000
    owners = stored_orders(platform_stack, report.order_ids)
    assert set(owners) == set(report.order_ids)
    assert len(report.order_ids) == 24
    assert len(set(owners.values())) == plan.users == 2
