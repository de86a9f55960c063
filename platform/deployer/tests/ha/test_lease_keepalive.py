"""KeepAlive against a real nats-server: leases kept past their ttl, losses reported (stolen,
or NATS gone) before another replica may hold them, and the fence that refuses a lost lease."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest
from nats.js import JetStreamContext

from deployer.ha.keepalive import KeepAlive
from deployer.ha.leases import Holder, LeaseBook, LeaseLostError, LeaseUnconfirmedError
from devkit.localstack.nats import NatsServer

OpenBook = Callable[[float], Awaitable[LeaseBook]]
ALPHA = Holder("alpha", "http://10.0.0.1:8080")
BETA = Holder("beta", "http://10.0.0.2:8080")


class Losses:
    """What ``on_lost`` reported, with when."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.at: dict[str, float] = {}
        self._event = asyncio.Event()

    async def __call__(self, name: str) -> None:
        self.names.append(name)
        self.at[name] = time.monotonic()
        self._event.set()

    async def wait(self, seconds: float) -> None:
        await asyncio.wait_for(self._event.wait(), seconds)


@pytest.fixture
async def keepers() -> AsyncIterator[list[KeepAlive]]:
    """KeepAlives to stop after the test."""
    made: list[KeepAlive] = []
    yield made
    for keeper in made:
        await keeper.stop()


async def test_a_kept_lease_lives_past_several_ttls(
    open_book: OpenBook, keepers: list[KeepAlive]
) -> None:
    ttl = 1.0
    book, other = await open_book(ttl), await open_book(ttl)
    lease = await book.acquire("leader", ALPHA)
    assert lease is not None
    losses = Losses()
    keeper = KeepAlive(book, losses)
    keepers.append(keeper)
    keeper.add(lease)
    keeper.start()

    ends = time.monotonic() + 4 * ttl
    while time.monotonic() < ends:
        assert await other.acquire("leader", BETA) is None
        await asyncio.sleep(0.1)

    kept = keeper.current("leader")
    assert kept is not None
    assert kept.revision > lease.revision
    assert losses.names == []
    assert keeper.held() == ["leader"]
    fenced = await keeper.fence("leader")
    assert fenced.revision > kept.revision
    assert keeper.current("leader") == fenced


async def test_a_stolen_lease_is_reported_lost_and_fenced_off(
    open_book: OpenBook, replica_js: Callable[[], Awaitable[JetStreamContext]], bucket: str,
    keepers: list[KeepAlive],
) -> None:  # fmt: skip
    ttl = 1.5
    book, thief = await open_book(ttl), await open_book(ttl)
    lease = await book.acquire("lane.prod.order", ALPHA)
    assert lease is not None
    losses = Losses()
    keeper = KeepAlive(book, losses)
    keepers.append(keeper)
    keeper.add(lease)
    keeper.start()

    # An operator (or a bug) purges the key, and another replica takes the free lease.
    kv = await (await replica_js()).key_value(bucket)
    await kv.purge("lane.prod.order")
    stolen_at = time.monotonic()
    assert await thief.acquire("lane.prod.order", BETA) is not None

    await losses.wait(ttl)
    assert losses.names == ["lane.prod.order"]
    assert losses.at["lane.prod.order"] - stolen_at <= ttl / 3 + 0.5  # the next renewal
    assert keeper.current("lane.prod.order") is None
    with pytest.raises(LeaseLostError, match="not held by this replica"):
        await keeper.fence("lane.prod.order")
    assert await thief.holder("lane.prod.order") == BETA


async def test_the_fence_finds_a_loss_before_the_next_renewal(
    open_book: OpenBook, keepers: list[KeepAlive]
) -> None:
    book, restarted = await open_book(30), await open_book(30)
    lease = await book.acquire("leader", ALPHA)
    assert lease is not None
    losses = Losses()
    keeper = KeepAlive(book, losses, every_seconds=60)
    keepers.append(keeper)
    keeper.add(lease)
    keeper.start()
    await keeper.fence("leader")

    # The same replica id acquires it elsewhere (a second process with this pod's id).
    assert await restarted.acquire("leader", Holder("alpha", "http://10.0.0.7:8080")) is not None

    with pytest.raises(LeaseLostError, match=re.escape("http://10.0.0.7:8080 holds it now")):
        await keeper.fence("leader")
    assert losses.names == ["leader"]
    assert keeper.held() == []


async def test_a_lease_nats_cannot_renew_is_lost_before_another_replica_may_take_it(
    fresh_nats_server: NatsServer, keepers: list[KeepAlive]
) -> None:
    ttl = 1.5
    connection = await nats.connect(fresh_nats_server.url, max_reconnect_attempts=-1)
    try:
        book = await LeaseBook.open(connection.jetstream(timeout=5), ttl_seconds=ttl)
        lease = await book.acquire("leader", ALPHA)
        assert lease is not None
        losses = Losses()
        keeper = KeepAlive(book, losses)
        keepers.append(keeper)
        keeper.add(lease)
        keeper.start()
        confirmed = (await keeper.fence("leader")).confirmed_at

        fresh_nats_server.stop()
        # The fence waits for NATS, but not past the time the lease can be kept.
        with pytest.raises(LeaseLostError):
            await keeper.fence("leader")
        await losses.wait(ttl)

        assert losses.names == ["leader"]
        assert confirmed + ttl * 2 / 3 <= losses.at["leader"] < confirmed + ttl
        assert keeper.held() == []
    finally:
        await connection.close()


async def test_a_lease_whose_renewals_fail_at_once_is_retried_then_lost_in_time(
    nats_server: NatsServer, bucket: str, keepers: list[KeepAlive]
) -> None:
    ttl = 1.5
    connection = await nats.connect(nats_server.url)
    book = await LeaseBook.open(connection.jetstream(timeout=5), ttl_seconds=ttl, bucket=bucket)
    lease = await book.acquire("leader", ALPHA)
    assert lease is not None
    losses = Losses()
    keeper = KeepAlive(book, losses)
    keepers.append(keeper)
    keeper.add(lease)
    keeper.start()
    confirmed = (await keeper.fence("leader")).confirmed_at

    await connection.close()
    with pytest.raises(LeaseUnconfirmedError, match="could not be confirmed"):
        await keeper.fence("leader")
    assert keeper.held() == ["leader"]  # unconfirmed is not lost yet
    await losses.wait(ttl)

    assert losses.names == ["leader"]
    assert confirmed + ttl * 2 / 3 <= losses.at["leader"] < confirmed + ttl


async def test_stop_with_release_frees_the_leases_at_once(open_book: OpenBook) -> None:
    book, other = await open_book(30), await open_book(30)
    losses = Losses()
    keeper = KeepAlive(book, losses)
    for name in ("leader", "lane.dev.order"):
        lease = await book.acquire(name, ALPHA)
        assert lease is not None
        keeper.add(lease)
    keeper.start()

    await keeper.stop(release=True)

    assert keeper.held() == []
    assert await other.acquire("leader", BETA) is not None
    assert await other.acquire("lane.dev.order", BETA) is not None
    assert losses.names == []


async def test_a_removed_lease_is_no_longer_renewed(
    open_book: OpenBook, keepers: list[KeepAlive]
) -> None:
    ttl = 1.0
    book, other = await open_book(ttl), await open_book(ttl)
    lease = await book.acquire("leader", ALPHA)
    assert lease is not None
    keeper = KeepAlive(book, Losses())
    keepers.append(keeper)
    keeper.start()
    keeper.add(lease)
    await keeper.fence("leader")

    removed = keeper.remove("leader")

    assert removed is not None
    assert removed.revision > lease.revision
    started = time.monotonic()
    while await other.acquire("leader", BETA) is None:
        assert time.monotonic() - started < ttl + 3, "a removed lease was still renewed"
        await asyncio.sleep(0.05)
