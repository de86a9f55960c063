"""Runtime start-up against a real nats-server: the on_start hook, then the consumers."""

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from devkit.localstack.nats import NatsServer
from kit.app import Runtime, ServiceSpec, Settings
from kit.events import CloudEvent, Delivery, EventBus, StreamSpec, Subscription
from kit.events.consumer import Consumer
from kit.settings import (
    DatabaseSettings,
    IdentitySettings,
    NatsSettings,
    ServiceSettings,
    TelemetrySettings,
)


def settings_for(nats_server: NatsServer, tmp_path: Path) -> Settings:
    return Settings(
        service=ServiceSettings(name="kit-tests", shutdown_timeout_seconds=5),
        nats=NatsSettings(url=nats_server.url),
        database=DatabaseSettings(url=SecretStr(f"sqlite:///{tmp_path}/kit-tests.db")),
        identity=IdentitySettings(),
        telemetry=TelemetrySettings(),
    )


def event() -> CloudEvent:
    return CloudEvent.new("dev.flotilla.test.v1", source="/tests", data={"n": 1})


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_on_start_runs_before_the_first_delivery_and_is_retried(
    bus: EventBus, stream: StreamSpec, nats_server: NatsServer, tmp_path: Path
) -> None:
    steps: list[str] = []

    async def on_start(runtime: Runtime) -> None:
        assert runtime.bus.is_connected  # NATS is up, its streams provisioned
        await runtime.bus.js.stream_info(stream.name)
        steps.append("on_start")
        if steps.count("on_start") == 1:
            raise ConnectionError("not yet")  # the chassis retries the hook
        await asyncio.sleep(0.5)  # a consumer started early would deliver meanwhile
        steps.append("on_start done")

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        steps.append("delivered")

    async def worker(runtime: Runtime) -> None:
        steps.append("worker")

    spec = ServiceSpec(
        name="kit-tests",
        streams=[stream],
        subscriptions=[
            Subscription(
                durable=f"c-{uuid.uuid4().hex[:8]}",
                stream=stream,
                subjects=stream.subjects,
                handler=handler,
            )
        ],
        workers=[worker],
        on_start=on_start,
    )
    await bus.publish(stream.subjects[0].replace(">", "waiting"), event())
    runtime = Runtime(spec, settings_for(nats_server, tmp_path))
    await runtime.start()
    try:
        await wait_for(lambda: "delivered" in steps and "worker" in steps)
    finally:
        await runtime.shutdown()
    assert steps[:3] == ["on_start", "on_start", "on_start done"]
    assert sorted(steps[3:]) == ["delivered", "worker"]


async def test_shutdown_during_on_start_starts_no_consumer(
    stream: StreamSpec, nats_server: NatsServer, tmp_path: Path
) -> None:
    entered = asyncio.Event()
    delivered: list[str] = []

    async def on_start(runtime: Runtime) -> None:
        entered.set()
        await asyncio.sleep(60)

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        delivered.append(event.id)

    subscription = Subscription(
        durable=f"c-{uuid.uuid4().hex[:8]}",
        stream=stream,
        subjects=stream.subjects,
        handler=handler,
    )
    spec = ServiceSpec(name="kit-tests", subscriptions=[subscription], on_start=on_start)
    runtime = Runtime(spec, settings_for(nats_server, tmp_path))
    await runtime.start()
    await asyncio.wait_for(entered.wait(), 10)
    await asyncio.wait_for(runtime.shutdown(), 10)
    assert delivered == []


async def test_handlers_get_the_services_database_and_outbox(
    bus: EventBus, stream: StreamSpec, nats_server: NatsServer, tmp_path: Path
) -> None:
    seen: list[Delivery] = []

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        seen.append(delivery)

    spec = ServiceSpec(
        name="kit-tests",
        subscriptions=[
            Subscription(
                durable=f"c-{uuid.uuid4().hex[:8]}",
                stream=stream,
                subjects=stream.subjects,
                handler=handler,
            )
        ],
        uses_database=True,
        outbox=True,
    )
    runtime = Runtime(spec, settings_for(nats_server, tmp_path))
    await runtime.start()
    try:
        await bus.publish(stream.subjects[0].replace(">", "deps"), event())
        await wait_for(lambda: bool(seen))
    finally:
        await runtime.shutdown()
    assert seen[0].database is runtime.database
    assert seen[0].outbox is runtime.events_outbox


async def test_a_handler_without_a_database_gets_a_clear_error(
    bus: EventBus, stream: StreamSpec
) -> None:
    errors: list[str] = []

    async def handler(event: CloudEvent, delivery: Delivery) -> None:
        for use in (lambda: delivery.database, lambda: delivery.outbox):
            with pytest.raises(RuntimeError) as raised:
                use()
            errors.append(str(raised.value))

    durable = f"c-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(bus, Subscription(durable, stream, stream.subjects, handler), "kit-tests")
    await consumer.start()
    try:
        await bus.publish(stream.subjects[0].replace(">", "nodb"), event())
        await wait_for(lambda: len(errors) == 2)
    finally:
        await consumer.stop(timeout=5)
    assert errors == [
        f"{durable}: the service declared no database",
        f"{durable}: the service declared no outbox",
    ]
