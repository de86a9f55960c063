"""Two deployer replicas over real NATS and real helm on the local cluster: one leads (its lanes
leased and every helm write fenced), the other answers the API through it and takes over when it
dies, finishing the deployment it left half done, with exactly one outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from deploy_contract.events import DeployPhase
from devkit.localstack.process import ServiceProcess
from tests.deployer.deployer_stack import DeployerStack, metric, until_metric

V1 = "1.0.0-a1b2c3d"
V2 = "1.1.0-b2c3d4e"
LEASE_SECONDS = 5


class Pair:
    """The stack's own deployer process (replica a, which starts first and leads) and b."""

    def __init__(self, stack: DeployerStack, standby: ServiceProcess) -> None:
        self.stack = stack
        self.a = stack.deployer
        self.b = standby


@pytest.fixture
async def pair(
    repo_root: Path, tmp_path: Path, kubeconfig: Path, namespace: str
) -> AsyncIterator[Pair]:
    env = {"DEPLOYER_REPLICA_ID": "a", "DEPLOYER_LEASE_SECONDS": str(LEASE_SECONDS)}
    stack = DeployerStack(repo_root, tmp_path, kubeconfig, namespace, env=env)
    await stack.start()
    standby = stack.replica("b")
    try:
        await asyncio.to_thread(standby.start)
        await asyncio.to_thread(standby.wait_until, "/readyz", 200, 30)
        yield Pair(stack, standby)
    finally:
        standby.stop()
        await stack.stop()


async def get(process: ServiceProcess, stack: DeployerStack, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(headers=stack.admin_headers) as http,
        http.get(process.base_url + path) as response,
    ):
        return response.status, await response.text()


async def leads(process: ServiceProcess) -> bool:
    return await metric(process, "deployer_leader") == 1


async def test_one_replica_leads_and_the_standby_answers_the_api_through_it(pair: Pair) -> None:
    stack = pair.stack
    assert await leads(pair.a)
    assert not await leads(pair.b)
    deployment = await stack.publish("order", V1)
    assert (await stack.outcome(deployment)).phase is DeployPhase.SUCCEEDED
    assert len(stack.helm_calls("upgrade", "order")) == 1
    for path in ("/api/services", f"/api/deployments/{deployment}"):
        status_a, body_a = await get(pair.a, stack, path)
        status_b, body_b = await get(pair.b, stack, path)
        assert (status_a, status_b) == (200, 200), (body_a, body_b)
        assert body_b == body_a
    # The standby checks nothing itself: the leader refuses a missing token.
    async with aiohttp.ClientSession() as http, http.get(pair.b.base_url + "/api/services") as r:
        assert r.status == 401


async def test_kill_9_of_the_leader_mid_upgrade_the_standby_finishes_it_once(pair: Pair) -> None:
    stack = pair.stack
    assert (await stack.outcome(await stack.publish("payment", V1))).phase is DeployPhase.SUCCEEDED
    slow = await stack.publish(
        "payment", V2, values={"podAnnotations": {"flotilla.dev/ready-after": "6s"}}
    )
    deadline = time.monotonic() + 30
    while not any(e.phase is DeployPhase.STARTED for e in await stack.events(slow)):
        assert time.monotonic() < deadline, "the upgrade never started"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # helm is waiting for the new pod now
    pair.a.kill()
    took_over = await until_metric(pair.b, "deployer_leader", 1, timeout=20)
    assert took_over <= 2 * LEASE_SECONDS, took_over
    outcome = await stack.outcome(slow, timeout=90)  # exactly one terminal event
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome
    status, body = await get(pair.b, stack, "/api/services")
    assert status == 200, body
    assert '"release_status":"deployed"' in body.replace(" ", ""), body


async def test_a_graceful_stop_hands_the_lanes_over_at_once(pair: Pair) -> None:
    stack = pair.stack
    await asyncio.to_thread(pair.a.stop)
    # Leases handed back, not left to expire.
    assert await until_metric(pair.b, "deployer_leader", 1, timeout=LEASE_SECONDS) < LEASE_SECONDS
    deployment = await stack.publish("auth", V1)
    assert (await stack.outcome(deployment)).phase is DeployPhase.SUCCEEDED
