"""Consumes payment results and settles orders: paid or payment_failed, once per event."""

from __future__ import annotations

from sqlalchemy import Connection

from kit.events import CloudEvent, Delivery, PermanentEventError, Subscription
from kit.events.idempotency import claim_event_in
from kit.events.streams import PAYMENTS
from order_service.domain.events import (
    PAYMENT_FAILED_SUBJECT,
    PAYMENT_SUCCEEDED_SUBJECT,
    PaymentResult,
)
from order_service.domain.models import OrderStatus
from order_service.infra.repository import record_payment_result

CONSUMER = "order-payment-results"


async def on_payment_result(event: CloudEvent, delivery: Delivery) -> None:
    """Settle the order named by a ``payments.succeeded`` or ``payments.failed`` event."""
    result = event.data_as(PaymentResult)
    succeeded = delivery.subject == PAYMENT_SUCCEEDED_SUBJECT
    status = OrderStatus.PAID if succeeded else OrderStatus.PAYMENT_FAILED

    def settle(connection: Connection) -> None:
        if not claim_event_in(connection, CONSUMER, event.id):
            return
        if not record_payment_result(connection, result.order_id, status, result.reason):
            # Raised inside the transaction: the claim is rolled back with it.
            raise PermanentEventError(f"payment result for unknown order {result.order_id}")

    await delivery.database.run_in_transaction(settle)


PAYMENT_RESULTS = Subscription(
    durable=CONSUMER,
    stream=PAYMENTS,
    subjects=(PAYMENT_SUCCEEDED_SUBJECT, PAYMENT_FAILED_SUBJECT),
    handler=on_payment_result,
)
