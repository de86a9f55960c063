"""The transactional outbox: events written with the business change, published after commit.

``Outbox.enqueue`` adds the event to ``kit_outbox`` in the caller's transaction, so the event
exists if and only if the change committed. The relay publishes pending rows in order (the
event id is the ``Nats-Msg-Id``, so a row published twice is stored once) and marks them. A
commit wakes the relay at once; a poll covers other processes' commits and NATS outages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database, UtcDateTime
from kit.events.bus import EventBus
from kit.events.envelope import CloudEvent
from kit.events.idempotency import kit_metadata
from kit.tracing import inject_trace_headers

log = logging.getLogger(__name__)
PURGE_EVERY_SECONDS = 600.0
PENDING_FLAG = "kit_outbox_pending"

outbox_table = Table(
    "kit_outbox",
    kit_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", String(256), nullable=False, unique=True),
    Column("subject", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=True, index=True),
)


class Outbox:
    """Enqueue events inside transactions; a relay task publishes them."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        keep_published: timedelta = timedelta(days=3),
    ) -> None:
        self._db = db
        self._bus = bus
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._keep_published = keep_published
        self._wake = asyncio.Event()
        db.on_commit(PENDING_FLAG, self._wake.set)

    async def enqueue(self, session: AsyncSession, subject: str, event_: CloudEvent) -> None:
        """Add ``event_`` to the outbox in ``session``'s transaction, with the current trace.

        ``session`` must come from this outbox's ``Database.transaction()``: its commit wakes the
        relay.
        """
        await session.execute(
            outbox_table.insert().values(
                event_id=event_.id,
                subject=subject,
                payload=event_.model_dump_json(exclude_none=True),
                headers=inject_trace_headers({}),
                created_at=datetime.now(UTC),
            )
        )
        session.info[PENDING_FLAG] = True

    async def run(self, stopping: asyncio.Event) -> None:
        """Publish pending events until ``stopping`` is set; survives NATS and database outages."""
        next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        while not stopping.is_set():
            self._wake.clear()
            try:
                published = await self.publish_pending()
            except Exception as exc:
                log.warning("outbox relay failed; retrying", extra={"error": repr(exc)})
                await _sleep_unless(stopping, self._poll_seconds)
                continue
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                with contextlib.suppress(Exception):
                    await self.purge_published()
            if published < self._batch_size:
                await _wait_any(stopping, self._wake, self._poll_seconds)

    async def publish_pending(self) -> int:
        """Publish one batch of pending events in order; returns how many were published."""
        query = (
            select(outbox_table.c.id, outbox_table.c.subject, outbox_table.c.payload,
                   outbox_table.c.headers)
            .where(outbox_table.c.published_at.is_(None))
            .order_by(outbox_table.c.id)
            .limit(self._batch_size)
        )  # fmt: skip
        if self._db.dialect != "postgresql":
            # One process per SQLite file: read, publish with no transaction open (SQLite has a
            # single writer, which the service's requests need meanwhile), then mark.
            async with self._db.transaction() as session:
                rows = (await session.execute(query)).all()
            done = await self._publish(rows)
            if done:
                async with self._db.transaction() as session:
                    await self._mark(session, done)
            return len(done)
        async with self._db.transaction() as session:
            # Replicas share the work: each locks the rows it publishes, skipping locked ones.
            rows = (await session.execute(query.with_for_update(skip_locked=True))).all()
            done = await self._publish(rows)
            if done:
                await self._mark(session, done)
        return len(done)

    async def _publish(self, rows: Sequence[Row[Any, Any, Any, Any]]) -> list[int]:
        # Publishes are pipelined on the one connection: they reach NATS (and the stream) in
        # order, and the acks are awaited together.
        results = await asyncio.gather(
            *(
                self._bus.publish(
                    row.subject,
                    CloudEvent.model_validate_json(row.payload),
                    headers=dict(row.headers),
                )
                for row in rows
            ),
            return_exceptions=True,
        )
        done = []
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                # Later rows may have been stored; they are published (and de-duplicated by
                # their event id) again with this one on the next round.
                break
            done.append(row.id)
        return done

    @staticmethod
    async def _mark(session: AsyncSession, ids: list[int]) -> None:
        await session.execute(
            update(outbox_table)
            .where(outbox_table.c.id.in_(ids))
            .values(published_at=datetime.now(UTC))
        )

    async def purge_published(self) -> int:
        """Delete events published longer ago than the retention; returns how many."""
        cutoff = datetime.now(UTC) - self._keep_published
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(outbox_table).where(outbox_table.c.published_at < cutoff)
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def pending_count(self) -> int:
        """How many events wait to be published."""
        async with self._db.transaction() as session:
            count = await session.scalar(
                select(func.count()).where(outbox_table.c.published_at.is_(None))
            )
        return int(count or 0)


async def _sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _wait_any(stopping: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())]
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
