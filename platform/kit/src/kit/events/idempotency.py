"""Once per event id: a processed-events table claimed inside the handler's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import UtcDateTime

kit_metadata = MetaData()

processed_events = Table(
    "kit_processed_events",
    kit_metadata,
    Column("consumer", String(200), primary_key=True),
    Column("event_id", String(256), primary_key=True),
    Column("processed_at", UtcDateTime, nullable=False),
)


async def claim_event(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` handles ``event_id`` in the session's transaction.

    Returns False when it was already handled: the caller then skips its side effects. Because
    the claim commits or rolls back with those side effects, they happen once per event id,
    however often the event is delivered.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(processed_events)
        .values(consumer=consumer, event_id=event_id, processed_at=datetime.now(UTC))
        .on_conflict_do_nothing()
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]
