"""The metric analysis gate end to end: the real deployer asks a real Prometheus about the
upstream environment's pods over the soak, and a release whose staging analysis fails never
reaches prod.

kwok starts no pod, so the pods Prometheus scrapes are real service processes on the chassis
(the sample service of test_canary_analysis.py, kit's middleware and /metrics), labelled as
order's stable pods in dev and in staging.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devkit.localstack.process import ServiceProcess
from devkit.localstack.prometheus import PrometheusServer
from tests.deployer.deployer_stack import DeployerStack
from tests.deployer.test_deployer_environments import (
    awaits,
    enter,
    gate,
    helm_releases,
    promoted,
    running,
    wait_promotion,
)
from tests.e2e.clustersupport import Helm

SAMPLE_SERVICE = Path(__file__).with_name("test_canary_analysis.py")
V1 = "1.1.0-b2c3d4e"
SOAK = 4.0


@dataclass
class Pods:
    """Order's stable "pods" of dev and staging (local processes) and the Prometheus that
    scrapes them."""

    prometheus: PrometheusServer
    dev: ServiceProcess
    staging: ServiceProcess


def environments(namespace: str) -> dict[str, object]:
    """dev -> staging -> prod, each promotion after a soak and an analysis of the upstream."""
    analysis = {"minSuccessRate": 0.99, "maxP99Seconds": 0.5, "minRequests": 10}
    return {
        "environments": [
            {"name": "dev", "namespace": namespace},
            {
                "name": "staging",
                "namespace": f"{namespace}-staging",
                "upstream": "dev",
                "promotion": {"soakSeconds": SOAK, "analysis": analysis},
            },
            {
                "name": "prod",
                "namespace": f"{namespace}-prod",
                "upstream": "staging",
                "promotion": {"soakSeconds": SOAK, "analysis": analysis},
            },
        ]
    }


@pytest.fixture
def pods(tmp_path: Path, namespace: str) -> Iterator[Pods]:
    """The two sample processes, scraped every second as order's stable pods."""
    processes = {
        name: ServiceProcess(
            f"order-{name}",
            [sys.executable, str(SAMPLE_SERVICE)],
            tmp_path,
            env={"SERVICE_ENVIRONMENT": "development", "OTEL_SDK_DISABLED": "true"},
        )
        for name in ("dev", "staging")
    }
    targets = [
        (
            f"127.0.0.1:{processes['dev'].port}",
            {"namespace": namespace, "service": "order", "track": "stable"},
        ),
        (
            f"127.0.0.1:{processes['staging'].port}",
            {"namespace": f"{namespace}-staging", "service": "order", "track": "stable"},
        ),
    ]
    prometheus = PrometheusServer(tmp_path / "prometheus", targets, scrape_interval=1.0)
    try:
        prometheus.start()
        for process in processes.values():
            process.start()
        prometheus.wait_for_targets(len(targets))
        yield Pods(prometheus, processes["dev"], processes["staging"])
    finally:
        for process in processes.values():
            process.stop()
        prometheus.stop()


async def traffic(process: ServiceProcess, error_every: int, stop: asyncio.Event) -> None:
    """About 20 requests a second; every ``error_every``-th answers 500 (0: none)."""
    count = 0
    async with httpx.AsyncClient() as client:
        while not stop.is_set():
            count += 1
            failing = error_every and count % error_every == 0
            await client.get(process.base_url + ("/work?status=500" if failing else "/work"))
            await asyncio.sleep(0.05)


@pytest.fixture
async def analysed(
    repo_root: Path, tmp_path: Path, kubeconfig: Path, namespace: str, pods: Pods
) -> AsyncIterator[DeployerStack]:
    """The deployer of dev, staging and prod, measuring through the Prometheus; dev's pods
    healthy, staging's failing one request in four, under traffic the whole test."""
    stack = DeployerStack(
        repo_root, tmp_path, kubeconfig, namespace,
        environments=environments(namespace),
        env={
            "DEPLOYER_PROMOTION_SECONDS": "0.5",
            "DEPLOYER_PROMETHEUS_URL": pods.prometheus.url,
            "DEPLOYER_PROMETHEUS_SCRAPE_INTERVAL_SECONDS": "1",
        },
    )  # fmt: skip
    stop = asyncio.Event()
    load = [
        asyncio.create_task(traffic(pods.dev, 0, stop)),
        asyncio.create_task(traffic(pods.staging, 4, stop)),
    ]
    try:
        async with running(stack) as started:
            yield started
    finally:
        stop.set()
        await asyncio.gather(*load, return_exceptions=True)


async def test_a_release_whose_staging_analysis_fails_never_reaches_prod(
    analysed: DeployerStack, helm: Helm, namespace: str
) -> None:
    _, release = await enter(analysed, V1)
    into_staging = await wait_promotion(
        analysed, f"{release}.staging", promoted, "promoted", timeout=60
    )
    passed = gate(into_staging, "analysis")
    assert passed["verdict"] == "passed", passed
    assert "order in dev over" in passed["reason"]
    assert "healthy" in passed["reason"]
    numbers = passed["evidence"]["numbers"]
    assert numbers["requests"] >= 10
    assert numbers["success_rate"] == 1.0
    assert passed["evidence"]["window_seconds"] >= SOAK

    into_prod = await wait_promotion(
        analysed,
        f"{release}.prod",
        lambda p: p["state"] == "failed",
        "failed at its analysis",
        timeout=60,
    )
    failed = gate(into_prod, "analysis")
    assert failed["verdict"] == "failed", failed
    assert "order in staging over" in failed["reason"]
    assert "is below the threshold 99.0%" in failed["reason"]
    assert failed["evidence"]["numbers"]["success_rate"] < 0.99
    assert gate(into_prod, "freeze")["verdict"] == "not_reached"
    assert into_prod["reason"].startswith("the analysis gate failed")
    assert into_prod["deployment_id"] is None

    # Asked for by hand now, it is refused: it failed, and a failed promotion is final.
    status = await _approve(analysed, into_prod["id"])
    assert status == 422
    await asyncio.sleep(2)  # a few promotion passes: nothing moves it any more
    assert helm_releases(helm, f"{namespace}-prod") == []
    events = [e for e in await analysed.promotion_events("order") if e.environment == "prod"]
    assert events[-1].state.value == "failed"
    assert not any(awaits("approval")(e.model_dump(mode="json")) for e in events)


async def _approve(stack: DeployerStack, promotion_id: str) -> int:
    async with httpx.AsyncClient(headers=stack.admin_headers) as http:
        response = await http.post(
            f"{stack.deployer.base_url}/api/promotions/{promotion_id}/approve", json={}
        )
    return response.status_code
