"""Leases over a real NATS key-value bucket: one holder at a time, taken over by the same
replica at once, freed by expiry or release."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import nats
import pytest

from deployer.ha.leases import Holder, Lease, LeaseBook, LeaseLostError, check_name
from devkit.localstack.nats import NatsServer

OpenBook = Callable[[float], Awaitable[LeaseBook]]
ALPHA = Holder("alpha", "http://10.0.0.1:8080")
BETA = Holder("beta", "http://10.0.0.2:8080")


async def test_of_two_replicas_racing_for_a_lease_exactly_one_wins(open_book: OpenBook) -> None:
    one, two = await open_book(5), await open_book(5)

    for attempt in range(5):
        name = f"lane.race-{attempt}"
        won = await asyncio.gather(one.acquire(name, ALPHA), two.acquire(name, BETA))

        winners = [lease for lease in won if lease is not None]
        assert len(winners) == 1, won
        assert await one.holder(name) == winners[0].holder


async def test_a_renewal_moves_the_revision_and_a_stale_lease_fails(open_book: OpenBook) -> None:
    book = await open_book(5)
    first = await book.acquire("leader", ALPHA)
    assert first is not None

    renewed = await book.renew(first)
    again = await book.renew(renewed)

    assert first.revision < renewed.revision < again.revision
    assert renewed.confirmed_at >= first.confirmed_at
    # The same replica acquiring again (as after a restart) writes a new revision: the leases
    # of before are stale, and their renewal proves it.
    taken = await book.acquire("leader", ALPHA)
    assert taken is not None
    for stale in (first, again):
        with pytest.raises(
            LeaseLostError, match=re.escape("'alpha' at http://10.0.0.1:8080 holds it now")
        ):
            await book.renew(stale)
    assert (await book.renew(taken)).revision > taken.revision


async def test_a_renewal_whose_answer_was_lost_is_recognised_as_its_own(
    open_book: OpenBook,
) -> None:
    book = await open_book(5)
    lease = await book.acquire("leader", ALPHA)
    assert lease is not None
    await book.renew(lease)  # stored, but say its answer never came: the caller keeps `lease`

    renewed = await book.renew(lease)

    assert renewed.revision > lease.revision + 1
    assert await book.holder("leader") == ALPHA


async def test_the_same_replica_takes_its_lease_over_at_once_others_wait(
    open_book: OpenBook,
) -> None:
    before_restart, after_restart, other = (
        await open_book(30),
        await open_book(30),
        await open_book(30),
    )
    held = await before_restart.acquire("lane.prod.order", ALPHA)
    assert held is not None
    moved = Holder("alpha", "http://10.0.0.9:8080")  # the same pod id, a new address

    assert await other.acquire("lane.prod.order", BETA) is None
    taken = await after_restart.acquire("lane.prod.order", moved)

    assert taken is not None
    assert taken.revision > held.revision
    assert await other.holder("lane.prod.order") == moved
    with pytest.raises(
        LeaseLostError, match=re.escape("http://10.0.0.9:8080 holds it now")
    ) as lost:
        await before_restart.renew(held)
    assert lost.value.holder == moved


async def test_a_lease_not_renewed_expires_after_its_ttl(open_book: OpenBook) -> None:
    ttl = 1.0
    dead, alive = await open_book(ttl), await open_book(ttl)
    held = await dead.acquire("leader", ALPHA)
    assert held is not None

    taken = await acquired_within(alive, "leader", BETA, ttl + 3)

    assert taken.confirmed_at - held.confirmed_at >= ttl  # never before its ttl
    assert await alive.holder("leader") == BETA
    with pytest.raises(
        LeaseLostError, match=re.escape("'beta' at http://10.0.0.2:8080 holds it now")
    ):
        await dead.renew(held)


async def test_a_renewed_lease_outlives_its_ttl(open_book: OpenBook) -> None:
    ttl = 1.0
    holder, other = await open_book(ttl), await open_book(ttl)
    lease = await holder.acquire("leader", ALPHA)
    assert lease is not None

    ends = time.monotonic() + 3 * ttl
    while time.monotonic() < ends:
        await asyncio.sleep(ttl / 3)
        lease = await holder.renew(lease)
        assert await other.acquire("leader", BETA) is None


async def test_an_expired_lease_says_nobody_holds_it(open_book: OpenBook) -> None:
    ttl = 1.0
    book = await open_book(ttl)
    lease = await book.acquire("leader", ALPHA)
    assert lease is not None

    await gone_within(book, "leader", ttl + 3)

    with pytest.raises(LeaseLostError, match="nobody holds it now"):
        await book.renew(lease)


async def test_a_released_lease_is_free_at_once(open_book: OpenBook) -> None:
    one, two = await open_book(30), await open_book(30)
    lease = await one.acquire("leader", ALPHA)
    assert lease is not None

    await one.release(lease)

    assert await two.holder("leader") is None
    taken = await two.acquire("leader", BETA)
    assert taken is not None
    await one.release(lease)  # lost already: left to its new holder, not an error
    assert await two.holder("leader") == BETA


async def test_opening_with_another_ttl_sets_the_buckets_ttl(open_book: OpenBook) -> None:
    await open_book(30)

    book = await open_book(2)
    lease = await book.acquire("leader", ALPHA)
    assert lease is not None

    await gone_within(book, "leader", 2 + 3)


def test_lease_names_are_key_tokens() -> None:
    assert check_name("lane.production.order") == "lane.production.order"
    for bad in ("", "lane..order", ".lane", "lane.", "lane order", "lane.*", "lane.>"):
        with pytest.raises(ValueError, match="not a valid key"):
            check_name(bad)


def test_a_holder_needs_a_replica_id() -> None:
    with pytest.raises(ValueError, match="needs a replica id"):
        Holder("", "http://x")


@pytest.fixture(scope="module")
def secured_nats(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(
        tmp_path_factory.mktemp("lease-nats"), config_file=repo_root / "platform/nats/local.conf"
    )
    server.start()
    yield server
    server.stop()


async def test_the_deployers_nats_user_may_use_the_lease_bucket(secured_nats: NatsServer) -> None:
    connection = await nats.connect(
        secured_nats.url, user="deployer", password="deployer-local-only"
    )
    try:
        book = await LeaseBook.open(connection.jetstream(timeout=5), ttl_seconds=10)
        lease = await book.acquire("leader", ALPHA)
        assert lease is not None
        assert await book.holder("leader") == ALPHA
        await book.release(await book.renew(lease))
        assert await book.holder("leader") is None
    finally:
        await connection.close()


async def acquired_within(book: LeaseBook, name: str, holder: Holder, seconds: float) -> Lease:
    """``name`` acquired for ``holder`` as soon as it is free; fails after ``seconds``."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        lease = await book.acquire(name, holder)
        if lease is not None:
            return lease
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} not free after {seconds}s (held by {await book.holder(name)})")


async def gone_within(book: LeaseBook, name: str, seconds: float) -> None:
    """Returns once nobody holds ``name``; fails after ``seconds``."""
    ends = time.monotonic() + seconds
    while await book.holder(name) is not None:
        assert time.monotonic() < ends, f"{name} still held after {seconds}s"
        await asyncio.sleep(0.05)
