"""Orders: what a client sends, what the API returns, and the states an order moves through."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kit.json_types import JsonInt


class OrderStatus(StrEnum):
    """An order is pending until payment reports; then it is paid or payment_failed."""

    PENDING = "pending"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"


class OrderItem(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    quantity: JsonInt = Field(ge=1, le=1000)
    unit_price_cents: JsonInt = Field(ge=0, le=100_000_000)


AMOUNT_RULE = (
    "The order's total in cents: it must equal the sum of quantity x unit_price_cents over the "
    "items (a 422 otherwise), so the items add up to at least 1. JSON Schema cannot compare "
    "fields, so this rule is stated here only."
)


class NewOrder(BaseModel):
    """The body of POST /orders: items, their total in cents, the currency and a payment token.

    ``amount_cents`` must equal the sum of the items.
    """

    model_config = ConfigDict(extra="forbid")

    items: list[OrderItem] = Field(min_length=1, max_length=100)
    amount_cents: JsonInt = Field(gt=0, le=1_000_000_000, description=AMOUNT_RULE)
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
    payment_token: str = Field(
        min_length=1, max_length=64, pattern=r"^tok_[A-Za-z0-9_]+$", examples=["tok_visa"]
    )

    @model_validator(mode="after")
    def _amount_matches_items(self) -> NewOrder:
        total = sum(item.quantity * item.unit_price_cents for item in self.items)
        if total != self.amount_cents:
            raise ValueError(
                f"amount_cents is {self.amount_cents} but the items add up to {total}; "
                "send the sum of quantity x unit_price_cents"
            )
        return self

    def fingerprint(self) -> str:
        """A stable hash of the request body, to tell a replay from a different request."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class Order(BaseModel):
    """An order as the API returns it."""

    id: str
    user_id: str
    status: OrderStatus
    items: list[OrderItem]
    amount_cents: int
    currency: str
    failure_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class OrderList(BaseModel):
    """A page of the caller's orders, newest first."""

    orders: list[Order]
