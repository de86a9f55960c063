"""Once per event id: a processed-events table claimed inside the handler's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Connection, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kit.db import Transaction, UtcDateTime, dialect_of

kit_metadata = MetaData()

processed_events = Table(
    "kit_processed_events",
    kit_metadata,
    Column("consumer", String(200), primary_key=True),
    Column("event_id", String(256), primary_key=True),
    Column("processed_at", UtcDateTime, nullable=False),
)

# Built once: a statement with its values passed at execution skips SQLAlchemy's per-call
# construction and cache-key work (measured as a fifth of a small transaction's cost).
_CLAIM_POSTGRESQL = pg_insert(processed_events).on_conflict_do_nothing()
_CLAIM_SQLITE = sqlite_insert(processed_events).on_conflict_do_nothing()


def _claim_values(consumer: str, event_id: str) -> dict[str, object]:
    return {"consumer": consumer, "event_id": event_id, "processed_at": datetime.now(UTC)}


async def claim_event(session: Transaction, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` handles ``event_id`` in the session's transaction.

    Returns False when it was already handled: the caller then skips its side effects. Because
    the claim commits or rolls back with those side effects, they happen once per event id,
    however often the event is delivered.
    """
    claim = _CLAIM_POSTGRESQL if dialect_of(session) == "postgresql" else _CLAIM_SQLITE
    result = await session.execute(claim, _claim_values(consumer, event_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_event_in(connection: Connection, consumer: str, event_id: str) -> bool:
    """``claim_event`` inside a ``Database.run_in_transaction`` work function."""
    claim = _CLAIM_POSTGRESQL if connection.dialect.name == "postgresql" else _CLAIM_SQLITE
    return bool(connection.execute(claim, _claim_values(consumer, event_id)).rowcount)
