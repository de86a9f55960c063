"""Streams on a real three-member NATS cluster (three nats-server processes on 127.0.0.1): as
many copies as NATS_STREAM_REPLICAS says, copies added to a live stream, and no acknowledged
event lost when a member is killed -9 in the middle of publishing, or when the members are
restarted one at a time."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from nats.errors import Error as NatsError
from nats.js.api import StreamInfo

from devkit.localstack.nats import NatsServer
from devkit.localstack.natscluster import NatsCluster
from kit.events import CloudEvent, EventBus, StreamSpec
from kit.events.streams import StreamReplicasError
from kit.settings import NatsSettings

Connect = Callable[[str, int], Awaitable[EventBus]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Connects EventBuses (NATS_URL, NATS_STREAM_REPLICAS) and drains them after the test."""
    buses: list[EventBus] = []

    async def connect(url: str, replicas: int) -> EventBus:
        settings = NatsSettings(url=url, stream_replicas=replicas, request_timeout_seconds=2)
        bus = EventBus(settings, client_name="replica-tests")
        await bus.connect()
        buses.append(bus)
        return bus

    yield connect
    for bus in buses:
        await bus.drain()


def own_stream() -> StreamSpec:
    suffix = uuid.uuid4().hex[:10]
    return StreamSpec(f"R{suffix.upper()}", (f"r{suffix}.>",))


def event(number: int) -> CloudEvent:
    return CloudEvent(
        id=f"event-{number}", source="/tests", type="test.replicated", data={"n": number}
    )


async def until_done(action: Callable[[], Awaitable[object]]) -> None:
    """Run ``action`` again until it succeeds, as the kit retries its stream set-up and the
    outbox its publishes: right after a member is lost a request may time out, or find no
    leader until the survivors have elected one."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await action()
            return
        except (NatsError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def publish_until_stored(bus: EventBus, subject: str, item: CloudEvent) -> None:
    """Publish ``item`` again (same event id) until JetStream acknowledges it."""
    await until_done(lambda: bus.publish(subject, item, timeout=2))


async def stored_ids(bus: EventBus, stream: str) -> list[str]:
    """The event id of every message in ``stream``, in stream order."""
    info = await bus.js.stream_info(stream)
    ids = []
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        message = await bus.js.get_msg(stream, sequence)
        ids.append((message.headers or {})["Nats-Msg-Id"])
    return ids


def connected_member(cluster: NatsCluster, bus: EventBus) -> NatsServer:
    """The member ``bus`` is connected to right now."""
    url = bus.nc.connected_url
    assert url is not None
    port = urlsplit(url.geturl()).port
    return next(member for member in cluster.members if member.port == port)


async def leader_of(cluster: NatsCluster, bus: EventBus, stream: str) -> NatsServer:
    """The member that leads ``stream`` (once there is a leader)."""
    deadline = time.monotonic() + 20
    while True:
        info = await bus.js.stream_info(stream)
        if info.cluster is not None and info.cluster.leader:
            return cluster.member(info.cluster.leader)
        assert time.monotonic() < deadline, f"{stream} has no leader"
        await asyncio.sleep(0.1)


async def wait_until_replicated(bus: EventBus, stream: str, copies: int) -> StreamInfo:
    """The info of ``stream`` once it has a leader and ``copies`` - 1 current followers (JetStream
    adds copies to a live stream in the background)."""
    deadline = time.monotonic() + 20
    while True:
        info = await bus.js.stream_info(stream)
        followers = (info.cluster.replicas or []) if info.cluster else []
        if (
            info.cluster is not None
            and info.cluster.leader
            and len(followers) == copies - 1
            and all(peer.current for peer in followers)
        ):
            return info
        assert time.monotonic() < deadline, f"{stream} never had {copies} current copies: {info}"
        await asyncio.sleep(0.1)


async def test_streams_get_the_copies_nats_stream_replicas_says(
    nats_cluster: NatsCluster, connect: Connect
) -> None:
    bus = await connect(nats_cluster.url, 3)
    spec = own_stream()
    await bus.ensure_streams([spec])
    info = await wait_until_replicated(bus, spec.name, 3)
    assert info.config.num_replicas == 3
    assert info.cluster is not None
    peers = {info.cluster.leader, *(peer.name for peer in info.cluster.replicas or [])}
    assert peers == set(nats_cluster.names), "one copy on each member"


@pytest.mark.parametrize("victim", ["connected member", "stream leader"])
async def test_killing_one_member_loses_no_acknowledged_event(
    nats_cluster: NatsCluster, connect: Connect, victim: str
) -> None:
    bus = await connect(nats_cluster.url, 3)
    spec = own_stream()
    await bus.ensure_streams([spec])
    subject = spec.subjects[0].replace(">", "placed")
    for number in range(40):
        await publish_until_stored(bus, subject, event(number))
    if victim == "connected member":
        killed = connected_member(nats_cluster, bus)
    else:
        killed = await leader_of(nats_cluster, bus, spec.name)
    killed.kill()  # kill -9 by the PID this test started: nothing flushed, no lame duck
    for number in range(40, 120):
        await publish_until_stored(bus, subject, event(number))
    assert bus.is_connected
    assert connected_member(nats_cluster, bus) is not killed
    assert (await leader_of(nats_cluster, bus, spec.name)) is not killed
    assert await stored_ids(bus, spec.name) == [f"event-{n}" for n in range(120)]

    # A rolling restart: the lost member comes back and catches up, then another one goes.
    killed.start()
    nats_cluster.wait_until_healthy()
    second = next(m for m in nats_cluster.members if m is not killed)
    second.kill()
    for number in range(120, 160):
        await publish_until_stored(bus, subject, event(number))
    assert await stored_ids(bus, spec.name) == [f"event-{n}" for n in range(160)]


async def test_a_process_starts_while_the_first_member_is_down(
    nats_cluster: NatsCluster, connect: Connect
) -> None:
    spec = own_stream()
    await (await connect(nats_cluster.url, 3)).ensure_streams([spec])
    nats_cluster.members[0].kill()
    bus = await connect(nats_cluster.url, 3)  # the first URL of the list answers nothing
    assert connected_member(nats_cluster, bus) is not nats_cluster.members[0]
    await until_done(lambda: bus.ensure_streams([spec]))
    await publish_until_stored(bus, spec.subjects[0].replace(">", "late"), event(1))
    assert await stored_ids(bus, spec.name) == ["event-1"]


async def test_ensure_streams_adds_copies_to_a_live_stream_and_never_removes_them(
    nats_cluster: NatsCluster, connect: Connect
) -> None:
    single = await connect(nats_cluster.url, 1)
    spec = own_stream()
    await single.ensure_streams([spec])
    subject = spec.subjects[0].replace(">", "before")
    for number in range(10):
        await single.publish(subject, event(number))
    assert (await single.js.stream_info(spec.name)).config.num_replicas == 1

    replicated = await connect(nats_cluster.url, 3)
    await replicated.ensure_streams([spec])
    info = await wait_until_replicated(replicated, spec.name, 3)
    assert info.config.num_replicas == 3
    assert await stored_ids(replicated, spec.name) == [f"event-{n}" for n in range(10)]

    # A process still on the single-server default does not take the copies away.
    await single.ensure_streams([spec])
    assert (await single.js.stream_info(spec.name)).config.num_replicas == 3


async def test_copies_a_single_server_cannot_keep_are_refused_saying_what_to_set(
    nats_server: NatsServer, nats_cluster: NatsCluster, connect: Connect
) -> None:
    single = await connect(nats_server.url, 3)
    with pytest.raises(StreamReplicasError, match="Set NATS_STREAM_REPLICAS=1 for a single"):
        await single.ensure_streams([own_stream()])
    too_many = await connect(nats_cluster.url, 5)
    with pytest.raises(StreamReplicasError, match="NATS_STREAM_REPLICAS to at most"):
        await too_many.ensure_streams([own_stream()])
