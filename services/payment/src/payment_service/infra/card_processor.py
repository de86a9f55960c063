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

from kit.db import Database
from payment_service.domain.models import PaymentSettings
from payment_service.infra.tables import ProcessorChargeRow

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
        async with db.transaction() as session:
            row = await session.get(ProcessorChargeRow, idempotency_key, with_for_update=True)
            if row is None:
                row = ProcessorChargeRow(
                    idempotency_key=idempotency_key,
                    charge_id=f"ch_{uuid.uuid4().hex[:24]}",
                    amount_cents=amount_cents,
                    attempts=0,
                    outcome=None,
                    decline_reason=None,
                )
                session.add(row)
            if row.outcome is None:
                row.attempts += 1
                if token == TIMEOUT_ONCE_TOKEN and row.attempts == 1:
                    timed_out = True
                else:
                    timed_out = False
                    row.decline_reason = self._decline_reason(amount_cents, token)
                    row.outcome = DECLINED if row.decline_reason else APPROVED
            else:
                timed_out = False
            outcome = ChargeOutcome(row.charge_id, row.outcome == APPROVED, row.decline_reason)
        if timed_out:
            raise ProcessorTimeoutError(
                f"card processor timed out charging {idempotency_key}; retry with the same key"
            )
        return outcome

    def _decline_reason(self, amount_cents: int, token: str) -> str | None:
        if token == DECLINED_TOKEN:
            return "card_declined"
        if amount_cents > self._settings.decline_above_cents:
            return "amount_over_limit"
        return None
