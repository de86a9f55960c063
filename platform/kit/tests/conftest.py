import uuid
from collections.abc import AsyncIterator

import pytest

from devkit.localstack.nats import NatsServer
from kit.events import EventBus, StreamSpec
from kit.events.streams import DEAD_LETTER
from kit.settings import NatsSettings


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[EventBus]:
    bus = EventBus(NatsSettings(url=nats_server.url), client_name="kit-tests")
    await bus.connect()
    await bus.ensure_streams([DEAD_LETTER])
    yield bus
    await bus.drain()


@pytest.fixture
async def stream(bus: EventBus) -> StreamSpec:
    """A stream of the test's own, so tests sharing one server do not see each other."""
    suffix = uuid.uuid4().hex[:10]
    spec = StreamSpec(f"T{suffix.upper()}", (f"t{suffix}.>",))
    await bus.ensure_streams([spec])
    return spec
