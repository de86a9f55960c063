"""The events the order service publishes and the ones it consumes (tolerant readers)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

ORDER_CREATED = "dev.flotilla.order.created.v1"
ORDER_CREATED_SUBJECT = "orders.created"
PAYMENT_SUCCEEDED_SUBJECT = "payments.succeeded"
PAYMENT_FAILED_SUBJECT = "payments.failed"
SOURCE = "/services/order"


class OrderCreated(BaseModel):
    """Data of ``orders.created``: what payment needs to charge the order."""

    order_id: str
    user_id: str
    amount_cents: int
    currency: str
    payment_token: str


class PaymentResult(BaseModel):
    """Data of ``payments.succeeded`` / ``payments.failed``, as far as orders care."""

    model_config = ConfigDict(extra="ignore")

    order_id: str
    payment_id: str
    reason: str | None = None
