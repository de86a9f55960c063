"""An order is paid through events: order -> orders.created -> payment -> payments.* -> order."""

import asyncio
import time

from tests.integration.saga_stack import SagaStack, order_body


async def test_an_order_is_paid_within_two_seconds(saga: SagaStack) -> None:
    started = time.monotonic()
    order_id = await saga.create_order()
    statuses = await saga.wait_settled([order_id], timeout=2.0)
    assert statuses[order_id] == "paid"
    assert time.monotonic() - started < 2.0
    payment = await saga.query(
        "payment", "SELECT status, amount_cents FROM payments WHERE order_id = :o", o=order_id
    )
    assert [tuple(row) for row in payment] == [("succeeded", 1200)]


async def test_declines_end_in_payment_failed_with_the_reason(saga: SagaStack) -> None:
    declined = await saga.create_order(order_body(token="tok_declined"))
    too_big = await saga.create_order(order_body(amount_cents=900_000))
    statuses = await saga.wait_settled([declined, too_big], timeout=5.0)
    assert statuses == {declined: "payment_failed", too_big: "payment_failed"}
    assert (await saga.order_status(declined))["failure_reason"] == "card_declined"
    assert (await saga.order_status(too_big))["failure_reason"] == "amount_over_limit"


async def test_a_processor_timeout_is_retried_and_charged_once(saga: SagaStack) -> None:
    order_id = await saga.create_order(order_body(token="tok_timeout_once"))
    statuses = await saga.wait_settled([order_id], timeout=10.0)
    assert statuses[order_id] == "paid"
    ledger = await saga.query(
        "payment",
        "SELECT attempts, outcome FROM fake_processor_charges WHERE idempotency_key = :o",
        o=order_id,
    )
    assert [tuple(row) for row in ledger] == [(2, "approved")]


async def test_orders_created_while_payment_is_down_are_paid_when_it_returns(
    saga: SagaStack,
) -> None:
    saga.payment.stop()
    order_ids = [await saga.create_order() for _ in range(5)]
    await asyncio.sleep(0.5)
    assert set((await saga.wait_settled(order_ids, timeout=0)).values()) == {"pending"}
    await asyncio.to_thread(saga.payment.start)
    statuses = await saga.wait_settled(order_ids, timeout=10.0)
    assert set(statuses.values()) == {"paid"}
