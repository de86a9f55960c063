"""The event bus against a real nats-server with JetStream."""

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from nats.js.errors import NoStreamResponseError, NotFoundError
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from devkit.localstack.ports import free_port
from kit.db import Database
from kit.events import CloudEvent, Delivery, EventBus, StreamSpec, Subscription
from kit.events.consumer import Consumer
from kit.events.deadletter import DeadLetter, dead_letter_subject
from kit.events.idempotency import claim_event, kit_metadata
from kit.settings import TelemetrySettings
from kit.tracing import add_span_processor, configure_tracing

Handler = Callable[[CloudEvent, Delivery], Awaitable[None]]


def subject_of(stream: StreamSpec, name: str = "happened") -> str:
    return stream.subjects[0].replace(">", name)


def make_event(**data: object) -> CloudEvent:
    return CloudEvent.new("dev.flotilla.test.v1", source="/tests", data=data)


@pytest.fixture
async def run_consumer(
    bus: EventBus, stream: StreamSpec
) -> AsyncIterator[Callable[..., Awaitable[Subscription]]]:
    consumers: list[Consumer] = []

    async def start(handler: Handler, **options: object) -> Subscription:
        subscription = Subscription(
            durable=f"c-{uuid.uuid4().hex[:8]}",
            stream=stream,
            subjects=stream.subjects,
            handler=handler,
            **options,  # type: ignore[arg-type]
        )
        consumer = Consumer(bus, subscription, "kit-tests")
        await consumer.start()
        consumers.append(consumer)
        return subscription

    yield start
    for consumer in consumers:
        await consumer.stop(timeout=5)


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def dead_letter_for(bus: EventBus, consumer: str) -> DeadLetter:
    msg = await bus.js.get_last_msg("DEADLETTER", dead_letter_subject("kit-tests", consumer))
    assert msg.data is not None
    return DeadLetter.model_validate(CloudEvent.from_bytes(msg.data).data)


async def test_same_event_id_published_twice_is_stored_once(
    bus: EventBus, stream: StreamSpec
) -> None:
    event = make_event(n=1)
    first = await bus.publish(subject_of(stream), event)
    second = await bus.publish(subject_of(stream), event)
    assert not first.duplicate
    assert second.duplicate
    info = await bus.js.stream_info(stream.name)
    assert info.state.messages == 1


async def test_a_publish_no_stream_takes_is_tried_for_a_moment_then_fails(
    bus: EventBus, stream: StreamSpec
) -> None:
    began = time.monotonic()
    with pytest.raises(NoStreamResponseError):
        await bus.publish(f"nostream-{uuid.uuid4().hex[:8]}.x", make_event(n=1))
    # Tried again 0.05, 0.1, 0.2 and 0.4 s later (a new stream's interest may still be on its way).
    assert time.monotonic() - began >= 0.75


async def test_a_publish_that_finds_its_stream_a_moment_later_is_stored(
    bus: EventBus, stream: StreamSpec
) -> None:
    late = StreamSpec(
        name=f"LATE{uuid.uuid4().hex[:8].upper()}", subjects=(f"late{uuid.uuid4().hex[:8]}.>",)
    )
    publishing = asyncio.create_task(
        bus.publish(late.subjects[0].replace(">", "x"), make_event(n=1))
    )
    await asyncio.sleep(0.1)
    await bus.ensure_streams([late])
    ack = await publishing
    assert ack.stream == late.name
    await bus.js.delete_stream(late.name)


async def test_failing_handler_is_retried_with_backoff_then_dead_lettered(
    bus: EventBus, stream: StreamSpec, run_consumer: Callable[..., Awaitable[Subscription]]
) -> None:
    attempts: list[float] = []

    async def always_fails(event: CloudEvent, delivery: Delivery) -> None:
        attempts.append(time.monotonic())
        raise RuntimeError(f"card processor down (attempt {delivery.attempt})")

    sub = await run_consumer(always_fails, max_deliver=3, backoff_seconds=(0.3, 0.9))
    event = make_event(n=2)
    await bus.publish(subject_of(stream), event)
    await wait_for(lambda: len(attempts) == 3)
    await asyncio.sleep(1.5)  # no fourth attempt may follow
    assert len(attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.25
    assert gaps[1] >= 0.85  # the backoff grows

    record = await dead_letter_for(bus, sub.durable)
    assert record.reason == "handler_failed"
    assert record.attempts == 3
    assert "card processor down (attempt 3)" in record.last_error
    assert CloudEvent.from_bytes(record.payload.encode()) == event


async def test_an_outage_of_the_handlers_database_never_dead_letters_the_event(
    bus: EventBus, stream: StreamSpec, run_consumer: Callable[..., Awaitable[Subscription]]
) -> None:
    # A PostgreSQL that refuses connections (nothing listens on its port) for more attempts than
    # max_deliver allows, then a working database: the event waits for it, then is handled.
    attempts: list[int] = []
    down = create_async_engine(f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/db")

    async def needs_the_database(event: CloudEvent, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if len(attempts) <= 5:
            async with down.connect() as connection:
                await connection.execute(select(1))

    sub = await run_consumer(needs_the_database, max_deliver=3, backoff_seconds=(0.05,))
    await bus.publish(subject_of(stream), make_event(n=3))
    await wait_for(lambda: len(attempts) == 6)
    await down.dispose()
    await asyncio.sleep(0.5)
    assert attempts == [1] * 6  # one delivery, the handler run again in it until it worked
    with pytest.raises(NotFoundError):
        await dead_letter_for(bus, sub.durable)


async def test_message_that_is_not_a_cloudevent_is_dead_lettered_at_once(
    bus: EventBus, stream: StreamSpec, run_consumer: Callable[..., Awaitable[Subscription]]
) -> None:
    calls: list[CloudEvent] = []

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        calls.append(event)

    sub = await run_consumer(handler, max_deliver=5)
    await bus.js.publish(subject_of(stream), b'{"id": "x", "hello": "world"}')
    await bus.publish(subject_of(stream), make_event(n=3))
    await wait_for(lambda: len(calls) == 1)  # the valid event behind it is not blocked
    record = await dead_letter_for(bus, sub.durable)
    assert record.reason == "invalid_event"
    assert record.attempts == 1
    assert "not a valid CloudEvent" in record.last_error
    assert "source" in record.last_error
    info = await bus.js.consumer_info(stream.name, sub.durable)
    assert info.num_ack_pending == 0
    assert info.num_redelivered == 0


async def test_handler_that_succeeds_on_retry_has_its_side_effect_once(
    bus: EventBus,
    stream: StreamSpec,
    run_consumer: Callable[..., Awaitable[Subscription]],
    database_url: str,
) -> None:
    db = Database(database_url)
    metadata = MetaData()
    charges = Table(
        "charges", metadata, Column("id", Integer, primary_key=True), Column("event_id", String)
    )
    await db.create_tables(kit_metadata)
    await db.create_tables(metadata)
    deliveries: list[int] = []

    async def charge(event: CloudEvent, delivery: Delivery) -> None:
        deliveries.append(delivery.attempt)
        async with db.transaction() as session:
            if await claim_event(session, "charge", event.id):
                await session.execute(charges.insert().values(event_id=event.id))
        if len(deliveries) == 1:
            raise ConnectionError("lost the connection after committing")

    await run_consumer(charge, backoff_seconds=(0.1,))
    event = make_event(n=4)
    await bus.publish(subject_of(stream), event)
    await wait_for(lambda: len(deliveries) == 2)
    await asyncio.sleep(0.3)
    assert len(deliveries) == 2
    async with db.transaction() as session:
        count = await session.scalar(select(func.count()).select_from(charges))
    assert count == 1
    await db.close()


async def test_long_handler_keeps_its_message_with_in_progress(
    bus: EventBus, stream: StreamSpec, run_consumer: Callable[..., Awaitable[Subscription]]
) -> None:
    attempts: list[int] = []

    async def slow(event: CloudEvent, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        await asyncio.sleep(2.5)

    sub = await run_consumer(slow, ack_wait_seconds=1.0)
    await bus.publish(subject_of(stream), make_event(n=5))
    await wait_for(lambda: len(attempts) == 1)
    await asyncio.sleep(3.0)
    assert attempts == [1]
    info = await bus.js.consumer_info(stream.name, sub.durable)
    assert info.num_redelivered == 0


async def test_concurrency_limit_bounds_parallel_handlers(
    bus: EventBus, stream: StreamSpec, run_consumer: Callable[..., Awaitable[Subscription]]
) -> None:
    running = 0
    peak = 0
    done = 0

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        done += 1

    for n in range(20):
        await bus.publish(subject_of(stream), make_event(n=n))
    await run_consumer(handler, concurrency=3)
    await wait_for(lambda: done == 20)
    assert peak == 3


async def test_trace_context_on_the_event_continues_in_the_consumer_span(
    bus: EventBus, stream: StreamSpec, run_consumer: Callable[..., Awaitable[Subscription]]
) -> None:
    configure_tracing("kit-tests", TelemetrySettings())
    exporter = InMemorySpanExporter()
    add_span_processor(SimpleSpanProcessor(exporter))
    handled = asyncio.Event()

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        handled.set()

    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    await run_consumer(handler)
    await bus.publish(subject_of(stream), make_event(n=6), headers={"traceparent": traceparent})
    await asyncio.wait_for(handled.wait(), 10)
    await asyncio.sleep(0.1)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    consumer_span = spans[f"process {subject_of(stream)}"]
    producer_span = spans[f"publish {subject_of(stream)}"]
    assert consumer_span.context is not None
    assert format(consumer_span.context.trace_id, "032x") == trace_id
    assert consumer_span.parent is not None
    assert producer_span.context is not None
    assert consumer_span.parent.span_id == producer_span.context.span_id


async def test_a_steady_trickle_of_events_costs_far_fewer_pull_requests_than_events(
    bus: EventBus, stream: StreamSpec, run_consumer: Callable[..., Awaitable[Subscription]]
) -> None:
    # Every pull request is work for nats-server: one lingering request serves a whole batch
    # of handler slots, where a fetch per free slot cost about two requests per event.
    handled = 0

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        nonlocal handled
        handled += 1

    sub = await run_consumer(handler)
    requests = 0

    async def count(_: object) -> None:
        nonlocal requests
        requests += 1

    spy = await bus.nc.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{stream.name}.{sub.durable}", cb=count)
    for n in range(60):
        await bus.publish(subject_of(stream), make_event(n=n))
        await asyncio.sleep(0.01)
    await wait_for(lambda: handled == 60)
    await spy.unsubscribe()
    assert requests <= 60 / 4, f"{requests} pull requests for 60 events"
