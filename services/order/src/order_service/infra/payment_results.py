"""Consumes payment results and settles orders: paid or payment_failed, once per event."""

from __future__ import annotations

from kit.events import CloudEvent, Delivery, PermanentEventError, Subscription
from kit.events.idempotency import claim_event
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
    async with delivery.database.core_transaction() as session:
        if not await claim_event(session, CONSUMER, event.id):
            return
        if not await record_payment_result(session, result.order_id, status, result.reason):
            raise PermanentEventError(f"payment result for unknown order {result.order_id}")


PAYMENT_RESULTS = Subscription(
    durable=CONSUMER,
    stream=PAYMENTS,
    subjects=(PAYMENT_SUCCEEDED_SUBJECT, PAYMENT_FAILED_SUBJECT),
    handler=on_payment_result,
)
