"""Saga latency (order created -> paid) at a steady rate, and the highest sustained rate."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

from tests.bench.stats import machine_cpu_seconds, percentile, processes_cpu_seconds
from tests.integration.saga_stack import SagaStack


@dataclass(frozen=True)
class RateResult:
    """One open-loop run at a target rate."""

    target_per_second: float
    achieved_per_second: float
    orders: int
    settled: int
    p50: float
    p99: float
    failed_requests: int
    # CPU seconds per order, from the first order offered until the last was paid:
    cpu_per_order: float  # the stack's processes (the services and its own nats-server)
    loadgen_cpu_per_order: float  # this process: the load generator and its polling of the db
    machine_cpu_per_order: float  # the whole machine: the above, the database, other users
    errors: tuple[str, ...] = ()  # why requests failed, each reason once

    @property
    def sustained(self) -> bool:
        """Kept up: every order settled, the offered rate was met, and p99 stayed under 1 s."""
        return (
            self.settled == self.orders
            and self.failed_requests == 0
            and self.achieved_per_second >= 0.95 * self.target_per_second
            and self.p99 < 1.0
        )


async def run_at_rate(saga: SagaStack, per_second: float, seconds: float) -> RateResult:
    """Offer ``per_second`` orders for ``seconds`` (open loop) and measure created -> paid."""
    interval = 1.0 / per_second
    count = int(per_second * seconds)
    ids: list[str] = []
    failures = 0
    errors: dict[str, None] = {}

    async def one() -> None:
        nonlocal failures
        try:
            ids.append(await saga.create_order())
        except Exception as exc:
            failures += 1
            errors[repr(exc)[:200]] = None

    pids = saga.pids()
    stack_before = processes_cpu_seconds(pids)
    loadgen_before = time.process_time()
    machine_before = machine_cpu_seconds()
    started = time.monotonic()
    tasks = []
    for n in range(count):
        delay = started + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    achieved = count / (time.monotonic() - started)
    await saga.wait_settled(ids, timeout=30)
    machine = machine_cpu_seconds() - machine_before
    loadgen = time.process_time() - loadgen_before
    stack = processes_cpu_seconds(pids) - stack_before
    rows = await saga.query(
        "order",
        "SELECT created_at, updated_at, status FROM orders WHERE id IN :ids",
        ids=ids,
    )
    latencies = [
        (_parse(row[1]) - _parse(row[0])).total_seconds() for row in rows if row[2] == "paid"
    ]
    return RateResult(
        target_per_second=per_second,
        achieved_per_second=achieved,
        orders=count,
        settled=len(latencies),
        p50=percentile(latencies, 0.5),
        p99=percentile(latencies, 0.99),
        failed_requests=failures,
        cpu_per_order=stack / count,
        loadgen_cpu_per_order=loadgen / count,
        machine_cpu_per_order=machine / count,
        errors=tuple(errors),
    )


def _parse(value: datetime | str) -> datetime:
    # Raw SQL returns strings on SQLite and datetimes on PostgreSQL.
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
