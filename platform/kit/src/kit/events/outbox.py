"""The transactional outbox: events written with the business change, published after commit.

``Outbox.enqueue`` adds the event to ``kit_outbox`` in the caller's transaction, so the event
exists if and only if the change committed. The relay publishes pending events in order (the
event id is the ``Nats-Msg-Id``, so an event published twice is stored once) and marks them.

The commit hands its events to the relay in memory, so the relay publishes them at once without
reading them back; marks are written in batches a moment later. The table is read at start,
after any failure, and every ``poll_seconds`` (rows other replicas left behind): an event whose
publish or mark was lost to a crash is published again from there, and de-duplicated by NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Integer,
    String,
    Table,
    Text,
    Update,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Row

from kit.db import Database, Transaction, UtcDateTime
from kit.events.bus import EventBus
from kit.events.envelope import CloudEvent
from kit.events.idempotency import kit_metadata
from kit.tracing import inject_trace_headers

log = logging.getLogger(__name__)
PURGE_EVERY_SECONDS = 600.0
COMMITTED_EVENTS = "kit_outbox_committed"

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

# Built once (values passed at execution): cheaper than building a statement per event.
_INSERT = outbox_table.insert()
_MARK_BY_EVENT_ID = (
    update(outbox_table)
    .where(outbox_table.c.event_id.in_(bindparam("event_ids", expanding=True)))
    .values(published_at=bindparam("published_at"))
)


@dataclass(frozen=True)
class _Pending:
    """One event to publish: from a commit just now, or read back from the table."""

    event_id: str
    subject: str
    event: CloudEvent
    headers: dict[str, str]


class Outbox:
    """Enqueue events inside transactions; a relay task publishes them."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        mark_delay_seconds: float = 0.1,
        keep_published: timedelta = timedelta(days=3),
    ) -> None:
        self._db = db
        self._bus = bus
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._mark_delay = mark_delay_seconds
        self._keep_published = keep_published
        self._wake = asyncio.Event()
        # Committed events not yet published; None when the relay must read the table instead
        # (at start, after a failure, or when too many piled up while NATS was away).
        self._committed: deque[_Pending] | None = None
        self._unmarked: list[str] = []
        self._mark_due = 0.0
        db.on_commit(COMMITTED_EVENTS, self._on_commit)

    async def enqueue(self, session: Transaction, subject: str, event_: CloudEvent) -> None:
        """Add ``event_`` to the outbox in ``session``'s transaction, with the current trace.

        ``session`` must come from this outbox's ``Database.transaction()`` (or
        ``core_transaction()``): its commit hands the event to the relay.
        """
        values, pending = _row_of(subject, event_)
        await session.execute(_INSERT, values)
        session.info.setdefault(COMMITTED_EVENTS, []).append(pending)

    def enqueue_in(self, connection: Connection, subject: str, event_: CloudEvent) -> None:
        """``enqueue`` inside a work function of this outbox's ``Database.run_in_transaction``."""
        values, pending = _row_of(subject, event_)
        connection.execute(_INSERT, values)
        connection.info.setdefault(COMMITTED_EVENTS, []).append(pending)

    def _on_commit(self, events: list[_Pending]) -> None:
        if self._committed is not None:
            if len(self._committed) + len(events) > 10 * self._batch_size:
                self._committed = None  # NATS is slow or away: the table keeps them
            else:
                self._committed.extend(events)
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Publish pending events until ``stopping`` is set; survives NATS and database outages."""
        next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        next_poll = 0.0
        while not stopping.is_set():
            self._wake.clear()
            try:
                if self._committed is None or time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self._poll_seconds
                    if await self.publish_pending() >= self._batch_size:
                        self._committed = None  # more rows wait in the table
                else:
                    await self._publish_committed()
                if self._unmarked and time.monotonic() >= self._mark_due:
                    await self._flush_marks()
            except Exception as exc:
                log.warning("outbox relay failed; retrying", extra={"error": repr(exc)})
                self._committed = None
                await _sleep_unless(stopping, self._poll_seconds)
                continue
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                with contextlib.suppress(Exception):
                    await self.purge_published()
            if self._committed is not None and not self._committed:
                wait_until = min(next_poll, self._mark_due if self._unmarked else next_poll)
                await _wait_any(stopping, self._wake, max(wait_until - time.monotonic(), 0.0))
        with contextlib.suppress(Exception):
            await self._flush_marks()  # else the next start publishes them again (de-duplicated)

    async def _publish_committed(self) -> None:
        assert self._committed is not None
        batch = [
            self._committed.popleft() for _ in range(min(len(self._committed), self._batch_size))
        ]
        done = await self._publish(batch)
        if not self._unmarked:
            self._mark_due = time.monotonic() + self._mark_delay
        self._unmarked.extend(item.event_id for item in batch[:done])
        if done < len(batch):
            raise ConnectionError(f"publishing {batch[done].subject} failed; reading the table")
        if len(self._unmarked) >= self._batch_size:
            await self._flush_marks()

    async def _flush_marks(self) -> None:
        ids, self._unmarked = self._unmarked, []
        if not ids:
            return
        try:
            await self._db.run_in_transaction(
                lambda connection: connection.execute(
                    _MARK_BY_EVENT_ID, {"event_ids": ids, "published_at": datetime.now(UTC)}
                )
            )
        except Exception:
            self._unmarked = ids + self._unmarked
            raise

    async def publish_pending(self) -> int:
        """Publish one batch of pending events from the table, in order; returns how many."""
        await self._flush_marks()  # what this process published already is not pending
        # Commits before this point are in the table; later ones are handed over from now on.
        self._committed = deque()
        query = (
            select(outbox_table.c.id, outbox_table.c.event_id, outbox_table.c.subject,
                   outbox_table.c.payload, outbox_table.c.headers)
            .where(outbox_table.c.published_at.is_(None))
            .order_by(outbox_table.c.id)
            .limit(self._batch_size)
        )  # fmt: skip
        if self._db.dialect != "postgresql":
            # One process per SQLite file: read, publish with no transaction open (SQLite has a
            # single writer, which the service's requests need meanwhile), then mark.
            rows = await self._db.run_in_transaction(
                lambda connection: connection.execute(query).all()
            )
            done = await self._publish([_from_row(row) for row in rows])
            if done:
                published = [row.id for row in rows[:done]]
                await self._db.run_in_transaction(
                    lambda connection: connection.execute(_mark(published))
                )
            return done
        async with self._db.core_transaction() as session:
            # Replicas share the work: each locks the rows it publishes, skipping locked ones.
            rows = (await session.execute(query.with_for_update(skip_locked=True))).all()
            done = await self._publish([_from_row(row) for row in rows])
            if done:
                await session.execute(_mark([row.id for row in rows[:done]]))
        return done

    async def _publish(self, batch: Sequence[_Pending]) -> int:
        """Publish ``batch`` in order; returns how many, from the first, NATS stored."""
        # Publishes are pipelined on the one connection: they reach NATS (and the stream) in
        # order, and the acks are awaited together.
        results = await asyncio.gather(
            *(self._bus.publish(item.subject, item.event, headers=dict(item.headers))
              for item in batch),
            return_exceptions=True,
        )  # fmt: skip
        for done, result in enumerate(results):
            if isinstance(result, BaseException):
                # Later events may have been stored; they are published (and de-duplicated by
                # their event id) again with this one on the next round.
                return done
        return len(batch)

    async def purge_published(self) -> int:
        """Delete events published longer ago than the retention; returns how many."""
        cutoff = datetime.now(UTC) - self._keep_published
        async with self._db.core_transaction() as session:
            result = await session.execute(
                delete(outbox_table).where(outbox_table.c.published_at < cutoff)
            )
        return int(result.rowcount)

    async def pending_count(self) -> int:
        """How many events are not yet published (or published but not yet marked)."""
        async with self._db.core_transaction() as session:
            count = await session.scalar(
                select(func.count()).where(outbox_table.c.published_at.is_(None))
            )
        return int(count or 0)


def _mark(ids: list[int]) -> Update:
    """Mark the rows ``ids`` published now."""
    return (
        update(outbox_table)
        .where(outbox_table.c.id.in_(ids))
        .values(published_at=datetime.now(UTC))
    )


def _row_of(subject: str, event_: CloudEvent) -> tuple[dict[str, Any], _Pending]:
    """The outbox row of ``event_`` on ``subject``, with the current trace, and its hand-over."""
    headers = inject_trace_headers({})
    values = {
        "event_id": event_.id,
        "subject": subject,
        "payload": event_.model_dump_json(exclude_none=True),
        "headers": headers,
        "created_at": datetime.now(UTC),
    }
    return values, _Pending(event_.id, subject, event_, headers)


def _from_row(row: Row[*tuple[Any, ...]]) -> _Pending:
    return _Pending(
        row.event_id, row.subject, CloudEvent.model_validate_json(row.payload), dict(row.headers)
    )


async def _sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _wait_any(stopping: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())]
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
