"""Payments: one per order, succeeded or failed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PaymentStatus(StrEnum):
    """Final states of a payment."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Payment(BaseModel):
    """A payment as the API returns it."""

    id: str
    order_id: str
    user_id: str
    status: PaymentStatus
    amount_cents: int
    currency: str
    reason: str | None = None
    created_at: datetime


class PaymentSettings(BaseSettings):
    """The fake card processor's rules (``PAYMENT_*``)."""

    model_config = SettingsConfigDict(env_prefix="PAYMENT_", extra="ignore")

    decline_above_cents: int = Field(default=500_000, ge=0)
    processor_latency_ms: int = Field(default=0, ge=0, le=10_000)
