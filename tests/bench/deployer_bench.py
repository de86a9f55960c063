"""The deployer's overheads: event -> helm started, against helm run directly, concurrency."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

import aiohttp
import yaml
from nats.aio.msg import Msg

from deploy_contract.events import DeployEventData, DeployPhase
from kit.events import CloudEvent
from tests.bench.stats import percentile
from tests.deployer.deployer_stack import SERVICES, DeployerStack, image
from tests.e2e.clustersupport import LocalCluster, unique_name

SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class DeployerFigures:
    """What one run of the deployer benchmark measured (seconds; step times in milliseconds)."""

    event_to_helm: list[float]
    # Per deployment: the deployer's own account of its path to helm (DeploymentRecord.to_helm_ms)
    # led by "delivery", the rest (publish -> the deployer's handler, NATS and the fetch).
    steps: list[dict[str, float]]
    # Interleaved pairs of the same upgrade: through the deployer, and helm run directly.
    through_deployer: list[float]
    direct_helm: list[float]
    concurrent_wall: float
    serial_wall: float

    def step_medians(self) -> dict[str, float]:
        """The median of each step's milliseconds, in the order of the path."""
        names = dict.fromkeys(name for steps in self.steps for name in steps)
        return {
            name: percentile([steps.get(name, 0.0) for steps in self.steps], 0.5) for name in names
        }


async def _record(stack: DeployerStack, deployment_id: str) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{stack.deployer.base_url}/api/deployments/{deployment_id}",
            headers=stack.admin_headers,
        ) as response,
    ):
        body: dict[str, object] = await response.json()
        return body


async def _deploy(stack: DeployerStack, service: str, tag: str) -> tuple[str, float, float]:
    """Publish and wait for the outcome event as it is published (a live subscription, so the
    measurement adds no polling delay); returns (id, publish wall time, seconds to the outcome)."""
    event = stack.artifact_event(service, tag)
    done: asyncio.Future[DeployEventData] = asyncio.get_running_loop().create_future()

    async def on_message(msg: Msg) -> None:
        data = DeployEventData.model_validate(CloudEvent.from_bytes(msg.data).data)
        if data.deployment_id == event.id and data.phase.terminal and not done.done():
            done.set_result(data)

    subscription = await stack.ci.nc.subscribe(f"deploy.{service}.>", cb=on_message)
    try:
        published = time.time()
        started = time.monotonic()
        await stack.ci.publish(f"pipeline.artifact.{service}", event)
        outcome = await asyncio.wait_for(done, 120)
        took = time.monotonic() - started
    finally:
        await subscription.unsubscribe()
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome
    return event.id, published, took


def _direct_helm(stack: DeployerStack, service: str, tag: str) -> float:
    values = yaml.safe_load((stack.values_dir / f"{service}.yaml").read_text())
    repository, _, tag = image(service, tag).rpartition(":")
    values["image"] = {"repository": repository, "tag": tag}
    started = time.monotonic()
    subprocess.run(
        [str(stack.helm_binary), "upgrade", "--install", service,
         str(stack.repo / "charts" / service), "--namespace", stack.namespace,
         "--kubeconfig", str(stack.kubeconfig), "--values", "-",
         "--wait=watcher", "--timeout", "120s"],
        input=yaml.safe_dump(values), text=True, check=True, capture_output=True,
    )  # fmt: skip
    return time.monotonic() - started


def _create_namespace(repo: Path, kubeconfig: Path, namespace: str) -> None:
    kubectl = subprocess.run(
        [str(repo / "platform/cluster/build-tools.sh"), "--path", "kubectl"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "create", "namespace", namespace],
        check=True, capture_output=True,
    )  # fmt: skip


async def run_deployer_bench(repo: Path, samples: int) -> DeployerFigures:
    """Bring up a cluster, NATS and the deployer; measure; tear everything down."""
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as directory:
        workdir = Path(directory)
        cluster = await asyncio.to_thread(
            LocalCluster.start, workdir / "kwok", unique_name("bench")
        )
        try:
            namespace = "bench"
            await asyncio.to_thread(_create_namespace, repo, cluster.kubeconfig, namespace)
            stack = DeployerStack(repo, workdir, cluster.kubeconfig, namespace)
            await stack.start()
            try:
                return await _measure(stack, samples)
            finally:
                await stack.stop()
        finally:
            cluster.delete()


async def _measure(stack: DeployerStack, samples: int) -> DeployerFigures:
    # Serial first (also installs every release), then concurrent, then the latency samples.
    serial_started = time.monotonic()
    for service in SERVICES:
        await _deploy(stack, service, "1.0.0-a1b2c3d")
    serial = time.monotonic() - serial_started

    concurrent_started = time.monotonic()
    await asyncio.gather(*(_deploy(stack, s, "1.1.0-b2c3d4e") for s in SERVICES))
    concurrent = time.monotonic() - concurrent_started

    latencies: list[float] = []
    steps: list[dict[str, float]] = []
    through: list[float] = []
    direct: list[float] = []
    tags = (f"1.2.{n}-c3d4e5f" for n in itertools.count())  # every upgrade a newer image
    for n in range(samples):
        # Pairs of the same upgrade, through the deployer and directly, in turn first: both
        # meet the same machine (its load drifts), neither always runs right after the other.
        for through_deployer in (True, False) if n % 2 == 0 else (False, True):
            # Each starts on a settled machine: what one run leaves running (the deployer
            # concluding, its next render starting ahead) does not slow the other's start.
            await asyncio.sleep(SETTLE_SECONDS)
            if not through_deployer:
                direct.append(await asyncio.to_thread(_direct_helm, stack, "order", next(tags)))
                continue
            deployment_id, published, took = await _deploy(stack, "order", next(tags))
            record = await _record(stack, deployment_id)
            helm_started = datetime.fromisoformat(str(record["helm_started_at"])).timestamp()
            path = cast("dict[str, float]", record["to_helm_ms"])
            delivery = (helm_started - published) * 1000 - sum(path.values())
            latencies.append(helm_started - published)
            steps.append({"delivery": round(delivery, 1), **path})
            through.append(took)
    return DeployerFigures(
        event_to_helm=latencies,
        steps=steps,
        through_deployer=through,
        direct_helm=direct,
        concurrent_wall=concurrent,
        serial_wall=serial,
    )
