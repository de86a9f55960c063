"""Consumes orders.created: charges each order exactly once and publishes the result."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from kit.events import CloudEvent, Delivery, Subscription
from kit.events.idempotency import claim_event_in
from kit.events.streams import ORDERS
from payment_service.domain.events import (
    ORDER_CREATED_SUBJECT,
    PAYMENT_FAILED,
    PAYMENT_FAILED_SUBJECT,
    PAYMENT_SUCCEEDED,
    PAYMENT_SUCCEEDED_SUBJECT,
    SOURCE,
    OrderToCharge,
    PaymentResult,
)
from payment_service.domain.models import PaymentStatus
from payment_service.infra.card_processor import FakeCardProcessor
from payment_service.infra.tables import Base

_INSERT_PAYMENT = insert(Base.metadata.tables["payments"])  # built once, values per order

CONSUMER = "payment-orders-created"


def charging_subscription(processor: FakeCardProcessor) -> Subscription:
    """The durable consumer of ``orders.created`` that charges with ``processor``."""

    async def on_order_created(event: CloudEvent, delivery: Delivery) -> None:
        db = delivery.database
        order = event.data_as(OrderToCharge)
        # The processor is idempotent by order id: a redelivery (after a crash, or of an order
        # settled already) gets the first outcome back, never a second charge.
        outcome = await processor.charge(
            db, order.order_id, order.amount_cents, order.payment_token
        )
        status = PaymentStatus.SUCCEEDED if outcome.approved else PaymentStatus.FAILED
        payment = {
            "id": str(uuid.uuid4()),
            "order_id": order.order_id,
            "user_id": order.user_id,
            "status": status.value,
            "amount_cents": order.amount_cents,
            "currency": order.currency,
            "reason": outcome.decline_reason,
            "processor_charge_id": outcome.charge_id,
            "created_at": datetime.now(UTC),
        }
        result = CloudEvent.new(
            PAYMENT_SUCCEEDED if outcome.approved else PAYMENT_FAILED,
            source=SOURCE,
            subject=order.order_id,
            data=PaymentResult(
                payment_id=payment["id"],
                order_id=order.order_id,
                user_id=order.user_id,
                amount_cents=order.amount_cents,
                currency=order.currency,
                reason=outcome.decline_reason,
            ).model_dump(),
        )
        subject = PAYMENT_SUCCEEDED_SUBJECT if outcome.approved else PAYMENT_FAILED_SUBJECT
        outbox = delivery.outbox

        def record(connection: Connection) -> None:
            if not claim_event_in(connection, CONSUMER, event.id):
                return
            # The unique order_id refuses a second payment here.
            connection.execute(_INSERT_PAYMENT, payment)
            outbox.enqueue_in(connection, subject, result)

        try:
            await db.run_in_transaction(record)
        except IntegrityError:
            return  # a concurrent delivery of the same order recorded it first

    return Subscription(
        durable=CONSUMER,
        stream=ORDERS,
        subjects=(ORDER_CREATED_SUBJECT,),
        handler=on_order_created,
        backoff_seconds=(0.2, 0.5, 1.0, 2.0, 5.0),
    )
