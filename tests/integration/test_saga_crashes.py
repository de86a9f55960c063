"""Crashes lose nothing and charge nothing twice: kill -9 of payment or order, NATS restarts."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from tests.integration.saga_stack import SagaStack

ORDERS = 200


async def create_many(saga: SagaStack, count: int, on_half: Callable[[], Awaitable[None]]) -> None:
    """Create ``count`` orders 20 at a time; run ``on_half`` once half of them exist."""
    created = 0
    gate = asyncio.Semaphore(20)
    fired = asyncio.Event()

    async def one() -> None:
        nonlocal created
        async with gate:
            with contextlib.suppress(Exception):  # the order service may be down right now
                await saga.create_order()
            created += 1
            if created >= count // 2 and not fired.is_set():
                fired.set()
                await on_half()

    await asyncio.gather(*(one() for _ in range(count)))


async def assert_every_order_settled_and_charged_once(saga: SagaStack) -> None:
    order_ids = [row[0] for row in await saga.query("order", "SELECT id FROM orders")]
    statuses = await saga.wait_settled(order_ids, timeout=60)
    pending = [i for i in order_ids if statuses.get(i) not in ("paid", "payment_failed")]
    assert pending == [], f"{len(pending)} of {len(order_ids)} orders never settled"
    payments = await saga.query("payment", "SELECT order_id FROM payments")
    charges = await saga.query(
        "payment", "SELECT idempotency_key FROM fake_processor_charges WHERE outcome IS NOT NULL"
    )
    assert sorted(r[0] for r in payments) == sorted(order_ids)
    assert sorted(r[0] for r in charges) == sorted(order_ids)


async def test_kill_9_of_payment_with_orders_in_flight(saga: SagaStack) -> None:
    async def crash() -> None:
        saga.payment.kill()

    await create_many(saga, ORDERS, crash)
    await asyncio.to_thread(saga.payment.start)
    order_count = len(await saga.query("order", "SELECT id FROM orders"))
    assert order_count == ORDERS
    await assert_every_order_settled_and_charged_once(saga)


async def test_kill_9_of_order_with_orders_in_flight(saga: SagaStack) -> None:
    async def crash_and_restart() -> None:
        saga.order.kill()
        await asyncio.to_thread(saga.order.start)

    await create_many(saga, ORDERS, crash_and_restart)
    await assert_every_order_settled_and_charged_once(saga)


async def test_nats_restart_with_orders_in_flight(saga: SagaStack) -> None:
    async def restart_nats() -> None:
        await asyncio.to_thread(saga.nats.restart)

    await create_many(saga, ORDERS, restart_nats)
    await assert_every_order_settled_and_charged_once(saga)
