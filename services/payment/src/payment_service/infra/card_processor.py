"""A deterministic fake card processor: the one fake in the platform, standing for a third party.

Rules (documented in services/payment/README.md):
- ``tok_declined`` is declined with ``card_declined``;
- an amount above ``PAYMENT_DECLINE_ABOVE_CENTS`` (default 500000) is declined with
  ``amount_over_limit``;
- ``tok_timeout_once`` times out on the first attempt for an order and succeeds afterwards;
- every other token is approved.

Like a real processor it is idempotent by key (the order id): a retried charge returns the first
outcome and never charges twice. Its ledger is a table of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, insert, select, update

from kit.db import Database
from payment_service.domain.models import PaymentSettings
from payment_service.infra.tables import Base

# The ledger's statements, built once (values passed at execution).
_LEDGER = Base.metadata.tables["fake_processor_charges"]
_LEDGER_ROW = select(_LEDGER).where(_LEDGER.c.idempotency_key == bindparam("key")).with_for_update()
_RECORD = insert(_LEDGER)
_UPDATE = (
    update(_LEDGER)
    .where(_LEDGER.c.idempotency_key == bindparam("key"))
    .values(
        attempts=bindparam("new_attempts"),
        outcome=bindparam("new_outcome"),
        decline_reason=bindparam("new_reason"),
    )
)

DECLINED_TOKEN = "tok_declined"  # noqa: S105 - a documented test card token, not a secret
TIMEOUT_ONCE_TOKEN = "tok_timeout_once"  # noqa: S105
APPROVED = "approved"
DECLINED = "declined"


class ProcessorTimeoutError(TimeoutError):
    """The processor did not answer in time; the charge may be retried with the same key."""


@dataclass(frozen=True)
class ChargeOutcome:
    """What the processor answered for a charge."""

    charge_id: str
    approved: bool
    decline_reason: str | None


class FakeCardProcessor:
    """Charges cards by the rules above, recording each idempotency key once."""

    def __init__(self, settings: PaymentSettings) -> None:
        self._settings = settings

    async def charge(
        self, db: Database, idempotency_key: str, amount_cents: int, token: str
    ) -> ChargeOutcome:
        """Charge ``amount_cents`` to ``token`` once per ``idempotency_key``."""
        if self._settings.processor_latency_ms:
            await asyncio.sleep(self._settings.processor_latency_ms / 1000)
        outcome, timed_out = await db.run_in_transaction(
            lambda connection: self._charge_in(connection, idempotency_key, amount_cents, token)
        )
        if timed_out:
            raise ProcessorTimeoutError(
                f"card processor timed out charging {idempotency_key}; retry with the same key"
            )
        return outcome

    def _charge_in(
        self, connection: Connection, idempotency_key: str, amount_cents: int, token: str
    ) -> tuple[ChargeOutcome, bool]:
        """The charge's ledger work in one transaction: its outcome, and whether it timed out."""
        found = connection.execute(_LEDGER_ROW, {"key": idempotency_key})
        row = found.one_or_none()
        attempts = (row.attempts if row is not None else 0) + 1
        if row is not None and row.outcome is not None:
            return ChargeOutcome(row.charge_id, row.outcome == APPROVED, row.decline_reason), False
        timed_out = token == TIMEOUT_ONCE_TOKEN and attempts == 1
        reason = None if timed_out else self._decline_reason(amount_cents, token)
        decided = None if timed_out else (DECLINED if reason else APPROVED)
        if row is None:
            charge_id = f"ch_{uuid.uuid4().hex[:24]}"
            connection.execute(
                _RECORD,
                {
                    "idempotency_key": idempotency_key,
                    "charge_id": charge_id,
                    "amount_cents": amount_cents,
                    "attempts": attempts,
                    "outcome": decided,
                    "decline_reason": reason,
                },
            )
        else:
            charge_id = row.charge_id
            connection.execute(
                _UPDATE,
                {
                    "key": idempotency_key,
                    "new_attempts": attempts,
                    "new_outcome": decided,
                    "new_reason": reason,
                },
            )
        return ChargeOutcome(charge_id, decided == APPROVED, reason), timed_out

    def _decline_reason(self, amount_cents: int, token: str) -> str | None:
        if token == DECLINED_TOKEN:
            return "card_declined"
        if amount_cents > self._settings.decline_above_cents:
            return "amount_over_limit"
        return None
