"""The payment service's tables (their schema is created by the Alembic migrations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import UtcDateTime


class Base(DeclarativeBase):
    """Declarative base of the payment tables."""


class PaymentRow(Base):
    """The outcome of charging one order; ``order_id`` is unique: one charge per order."""

    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(255))
    processor_charge_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProcessorChargeRow(Base):
    """The fake card processor's own ledger: one row per idempotency key, like a real one's."""

    __tablename__ = "fake_processor_charges"

    idempotency_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    charge_id: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int]
    attempts: Mapped[int]
    outcome: Mapped[str | None] = mapped_column(String(20))
    decline_reason: Mapped[str | None] = mapped_column(String(255))
