"""The deployer's key-value buckets (its records, promotions and leases) on a real
three-member NATS cluster with the users and permissions of platform/nats/local.conf: as many
copies as NATS_STREAM_REPLICAS says, and copies added to the buckets of an earlier single-copy
deployer, with their values kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from deployer.adapters.promotion_store import (
    HOLDS_BUCKET,
    PROMOTIONS_BUCKET,
    RELEASES_BUCKET,
    PromotionKV,
)
from deployer.adapters.store import DEPLOYMENTS_BUCKET, SERVICES_BUCKET, Store
from deployer.ha.leases import LEASES_BUCKET, LeaseBook
from devkit.localstack.environment import local_password
from devkit.localstack.natscluster import NatsCluster
from kit.events import EventBus
from kit.settings import NatsSettings

BUCKETS = (
    DEPLOYMENTS_BUCKET,
    SERVICES_BUCKET,
    RELEASES_BUCKET,
    PROMOTIONS_BUCKET,
    HOLDS_BUCKET,
    LEASES_BUCKET,
)


@pytest.fixture
def secured_cluster(repo_root: Path, tmp_path: Path) -> Iterator[NatsCluster]:
    """Three members with the local users, so the deployer's own permissions are what counts."""
    cluster = NatsCluster(tmp_path / "cluster", users_config=repo_root / "platform/nats/local.conf")
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def deployer_bus(secured_cluster: NatsCluster) -> AsyncIterator[EventBus]:
    settings = NatsSettings(
        url=secured_cluster.url, user="deployer", password=local_password("deployer")
    )
    bus = EventBus(settings, client_name="deployer-bucket-tests")
    await bus.connect()
    yield bus
    await bus.drain()


async def copies(bus: EventBus, bucket: str) -> tuple[int, int]:
    """(configured copies, current followers + 1) of ``bucket``'s stream, once it has a leader."""
    deadline = time.monotonic() + 20
    while True:
        info = await bus.js.stream_info(f"KV_{bucket}")
        cluster = info.cluster
        if cluster is not None and cluster.leader:
            current = [peer for peer in cluster.replicas or [] if peer.current]
            if len(current) + 1 == info.config.num_replicas or time.monotonic() > deadline:
                return info.config.num_replicas or 1, len(current) + 1
        assert time.monotonic() < deadline, f"KV_{bucket} has no leader"
        await asyncio.sleep(0.1)


async def open_all(bus: EventBus, replicas: int) -> None:
    """Open every bucket the deployer opens at start, as main.py does, with ``replicas``."""
    await Store.open(bus.js, replicas)
    await PromotionKV.open(bus.js, replicas)
    await LeaseBook.open(bus.js, ttl_seconds=15, replicas=replicas)


async def test_the_buckets_get_the_copies_nats_stream_replicas_says(
    deployer_bus: EventBus,
) -> None:
    await open_all(deployer_bus, 3)
    for bucket in BUCKETS:
        assert await copies(deployer_bus, bucket) == (3, 3), bucket


async def test_buckets_of_a_single_copy_deployer_get_more_copies_and_keep_their_values(
    deployer_bus: EventBus,
) -> None:
    await open_all(deployer_bus, 1)
    services = await deployer_bus.js.key_value(SERVICES_BUCKET)
    await services.put("staging.order", b"kept")
    for bucket in BUCKETS:
        assert await copies(deployer_bus, bucket) == (1, 1), bucket

    await open_all(deployer_bus, 3)
    for bucket in BUCKETS:
        assert await copies(deployer_bus, bucket) == (3, 3), bucket
    entry = await (await deployer_bus.js.key_value(SERVICES_BUCKET)).get("staging.order")
    assert entry.value == b"kept"
    info = await deployer_bus.js.stream_info(f"KV_{DEPLOYMENTS_BUCKET}")
    assert info.config.max_age == 30 * 24 * 3600, "the rest of the bucket's settings is kept"
    assert info.config.max_msgs_per_subject == 1
