"""Fixtures of the lease tests: connections to the session's nats-server (one per replica) and
a bucket of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest
from nats.js import JetStreamContext

from deployer.ha.leases import LeaseBook
from devkit.localstack.nats import NatsServer


@pytest.fixture
async def replica_js(
    nats_server: NatsServer,
) -> AsyncIterator[Callable[[], Awaitable[JetStreamContext]]]:
    """Opens a NATS connection of its own per call (as each replica has), closed after the
    test."""
    connections = []

    async def connect() -> JetStreamContext:
        connection = await nats.connect(nats_server.url)
        connections.append(connection)
        return connection.jetstream(timeout=5)

    yield connect
    for connection in connections:
        await connection.close()


@pytest.fixture
def bucket() -> str:
    """A lease bucket of the test's own."""
    return f"leases-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def open_book(
    replica_js: Callable[[], Awaitable[JetStreamContext]], bucket: str
) -> Callable[[float], Awaitable[LeaseBook]]:
    """Opens the test's bucket with a ttl, on a connection of its own (one replica's view)."""

    async def book(ttl: float) -> LeaseBook:
        return await LeaseBook.open(await replica_js(), ttl_seconds=ttl, bucket=bucket)

    return book
