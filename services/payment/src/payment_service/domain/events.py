"""The events payment consumes and publishes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

ORDER_CREATED_SUBJECT = "orders.created"
PAYMENT_SUCCEEDED = "dev.flotilla.payment.succeeded.v1"
PAYMENT_FAILED = "dev.flotilla.payment.failed.v1"
PAYMENT_SUCCEEDED_SUBJECT = "payments.succeeded"
PAYMENT_FAILED_SUBJECT = "payments.failed"
SOURCE = "/services/payment"


class OrderToCharge(BaseModel):
    """Data of ``orders.created``, as far as payment cares."""

    model_config = ConfigDict(extra="ignore")

    order_id: str
    user_id: str
    amount_cents: int
    currency: str
    payment_token: str


class PaymentResult(BaseModel):
    """Data of ``payments.succeeded`` and ``payments.failed``."""

    payment_id: str
    order_id: str
    user_id: str
    amount_cents: int
    currency: str
    reason: str | None = None
