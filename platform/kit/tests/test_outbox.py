"""The transactional outbox on SQLite and PostgreSQL, against a real nats-server."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from devkit.localstack.nats import NatsServer
from kit.db import Database
from kit.events import CloudEvent, EventBus, StreamSpec
from kit.events.idempotency import kit_metadata
from kit.events.outbox import Outbox
from kit.settings import NatsSettings


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_tables(kit_metadata)
    yield database
    await database.close()


async def stored(bus: EventBus, stream: StreamSpec) -> int:
    return int((await bus.js.stream_info(stream.name)).state.messages)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def new_event(n: int) -> CloudEvent:
    return CloudEvent.new("dev.flotilla.test.v1", source="/tests", data={"n": n})


async def test_only_committed_events_are_published_in_order(
    db: Database, bus: EventBus, stream: StreamSpec
) -> None:
    outbox = Outbox(db, bus)
    subject = stream.subjects[0].replace(">", "x")
    with contextlib.suppress(RuntimeError):
        async with db.transaction() as session:
            await outbox.enqueue(session, subject, new_event(0))
            raise RuntimeError("the business change failed")
    async with db.transaction() as session:
        for n in (1, 2, 3):
            await outbox.enqueue(session, subject, new_event(n))

    assert await outbox.publish_pending() == 3
    assert await outbox.publish_pending() == 0
    assert await outbox.pending_count() == 0
    assert await stored(bus, stream) == 3
    psub = await bus.js.pull_subscribe(subject, stream=stream.name)
    messages = await psub.fetch(3, timeout=2)
    assert [CloudEvent.from_bytes(m.data).data["n"] for m in messages] == [1, 2, 3]


OUTAGE_STREAM = StreamSpec("OUTBOXTEST", ("outboxtest.>",))


@pytest.fixture
async def outage_bus(fresh_nats_server: NatsServer) -> AsyncIterator[EventBus]:
    """A bus on a nats-server of the test's own, which the test may stop and start."""
    bus = EventBus(NatsSettings(url=fresh_nats_server.url), client_name="outbox-test")
    await bus.connect()
    await bus.ensure_streams([OUTAGE_STREAM])
    yield bus
    await bus.drain()


async def test_the_relay_wakes_on_commit_and_waits_out_a_nats_outage(
    db: Database, outage_bus: EventBus, fresh_nats_server: NatsServer
) -> None:
    outbox = Outbox(db, outage_bus, poll_seconds=0.2)
    stopping = asyncio.Event()
    relay = asyncio.create_task(outbox.run(stopping))

    started = time.monotonic()
    async with db.transaction() as session:
        await outbox.enqueue(session, "outboxtest.a", new_event(1))
    await eventually(lambda: drained(outbox))
    assert time.monotonic() - started < 0.5  # woken by the commit, not by the poll

    fresh_nats_server.stop()
    async with db.transaction() as session:
        await outbox.enqueue(session, "outboxtest.a", new_event(2))
    await asyncio.sleep(1.0)
    assert await outbox.pending_count() == 1  # kept, not lost

    fresh_nats_server.start()
    await eventually(lambda: drained(outbox), timeout=20)
    assert await stored(outage_bus, OUTAGE_STREAM) == 2
    stopping.set()
    await relay


async def test_events_piled_up_during_an_outage_go_out_in_commit_order(
    db: Database, outage_bus: EventBus, fresh_nats_server: NatsServer
) -> None:
    # A small batch, so the backlog goes out over several reads of the table.
    outbox = Outbox(db, outage_bus, batch_size=2, poll_seconds=0.2)
    stopping = asyncio.Event()
    relay = asyncio.create_task(outbox.run(stopping))
    async with db.transaction() as session:
        await outbox.enqueue(session, "outboxtest.a", new_event(0))
    await eventually(lambda: drained(outbox))

    fresh_nats_server.stop()
    for n in range(1, 26):
        async with db.transaction() as session:
            await outbox.enqueue(session, "outboxtest.a", new_event(n))
    fresh_nats_server.start()
    await eventually(lambda: drained(outbox), timeout=20)

    psub = await outage_bus.js.pull_subscribe("outboxtest.a", stream=OUTAGE_STREAM.name)
    messages = await psub.fetch(26, timeout=2)
    assert [CloudEvent.from_bytes(m.data).data["n"] for m in messages] == list(range(26))
    stopping.set()
    await relay


async def drained(outbox: Outbox) -> bool:
    return await outbox.pending_count() == 0


async def test_events_published_but_not_marked_before_a_crash_are_stored_once(
    db: Database, bus: EventBus, stream: StreamSpec
) -> None:
    subject = stream.subjects[0].replace(">", "x")
    # Marks of handed-over events would come a minute later; the table is read only at start.
    outbox = Outbox(db, bus, poll_seconds=60, mark_delay_seconds=60)
    relay = asyncio.create_task(outbox.run(asyncio.Event()))

    async def stored_exactly(count: int) -> bool:
        return await stored(bus, stream) == count

    async with db.transaction() as session:
        await outbox.enqueue(session, subject, new_event(1))
    await eventually(lambda: drained(outbox))  # the first round reads the table and marks
    async with db.transaction() as session:
        await outbox.enqueue(session, subject, new_event(2))  # handed over by the commit
    await eventually(lambda: stored_exactly(2))
    relay.cancel()  # killed after publishing, before marking
    await asyncio.gather(relay, return_exceptions=True)
    assert await outbox.pending_count() == 1

    restarted = Outbox(db, bus)
    assert await restarted.publish_pending() == 1
    assert await restarted.pending_count() == 0
    assert await stored(bus, stream) == 2  # the second publish was de-duplicated by event id
