"""What the canary suite and bench share: a real Prometheus scraping the platform's pods, a
deployer whose environment gives order (and the gateway) the canary strategy, and the canary
events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deploy_contract.events import CanaryState, DeployEventData, DeployPhase
from devkit.localstack.poddiscovery import PodDiscovery
from devkit.localstack.prometheus import PrometheusServer
from tests.deployer.deployer_stack import DeployerStack
from tests.realpods.realcluster import SERVICES, Platform
from tests.realpods.rollouts import real_pods_deployer

SCRAPE_SECONDS = 1.0


def canary_strategy(interval: int, count: int, failure_limit: int) -> dict[str, Any]:
    """order's strategy: half its pods (1 of 2) on the canary, then one analysis step."""
    return {
        "type": "canary",
        "canary": {
            "steps": [{"setWeight": 50}, {"analysis": {}}],
            "analysis": {
                "intervalSeconds": interval,
                "count": count,
                "failureLimit": failure_limit,
                "inconclusiveLimit": 2,
                "minRequests": 10,
                "successRate": 0.99,
                # These tests judge by success rate (and p99 against maxP99Seconds). A fresh
                # pod's p99 on this loaded 2-core machine is often several times a warm pod's
                # (a rollout's slow tail: 158 ms against 23 ms measured), which the ratio rule
                # would call a failure; that rule is tested against a real Prometheus in
                # tests/deployer/test_canary_analysis.py.
                "maxP99Ratio": 100,
            },
        },
    }


@contextmanager
def pod_prometheus(platform: Platform, directory: Path) -> Iterator[str]:
    """A real Prometheus scraping the platform's pods every second (their IPs on the node's
    bridge), labelled namespace, service and track as the analysis asks; yields its URL."""
    server = PrometheusServer(directory, scrape_interval=SCRAPE_SECONDS)
    server.start()
    kubectl = platform.kubectl
    discovery = PodDiscovery(server, kubectl.binary, kubectl.kubeconfig, [platform.namespace])
    try:
        discovery.start()
        server.wait_for_targets(len(SERVICES) * 2, timeout=60)
        yield server.url
    finally:
        discovery.stop()
        server.stop()


def canary_deployer_stack(
    platform: Platform,
    directory: Path,
    prometheus: str,
    strategy: dict[str, Any],
    services: tuple[str, ...] = ("order",),
) -> DeployerStack:
    """A deployer (not started) whose environment gives ``services`` (order by default)
    ``strategy``, measured by ``prometheus``."""
    env = {
        "DEPLOYER_PROMETHEUS_URL": prometheus,
        "DEPLOYER_PROMETHEUS_SCRAPE_INTERVAL_SECONDS": str(SCRAPE_SECONDS),
    }
    values = {service: {"strategy": strategy} for service in services}
    return real_pods_deployer(platform, directory, env, values)


async def canary_events(deployer: DeployerStack, deployment_id: str) -> list[DeployEventData]:
    """The deployment's ``canary`` events so far."""
    return [e for e in await deployer.events(deployment_id) if e.phase is DeployPhase.CANARY]


async def wait_for_canary(
    deployer: DeployerStack, deployment_id: str, state: CanaryState, timeout: float = 180
) -> DeployEventData:
    """The first ``canary`` event of the deployment in ``state``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in await canary_events(deployer, deployment_id):
            if event.canary is not None and event.canary.state is state:
                return event
        await asyncio.sleep(0.5)
    seen = [e.canary.state.value for e in await canary_events(deployer, deployment_id) if e.canary]
    raise AssertionError(f"{deployment_id} never reached {state.value}; states: {seen}")
