"""Rollouts of real pods under traffic: failed requests and p99 during a rollout of order against
steady state, the time from CI's event to every new pod ready against the same helm upgrade run
directly under the same traffic, and rollouts while another process keeps one core busy. One
cluster with the machine's real node, the whole platform on it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from loadgen.report import WindowStats
from pipelines_cli.incluster import release_arguments
from tests.bench.busycore import one_core_busy
from tests.deployer.deployer_stack import DeployerStack
from tests.realpods.realcluster import (
    SERVICES,
    Platform,
    RealCluster,
    install_platform,
    real_pod_values,
    reap_stale_runs,
    session_run_dir,
)
from tests.realpods.rollouts import (
    artifact,
    new_image,
    real_pods_deployer,
    settled,
    traffic,
)

STEADY_SECONDS = 15.0


@dataclass
class RolloutFigures:
    """What one bench run measured (latencies in ms, times in s). Every rollout runs under the
    same traffic; the deployer's and helm's alternate which goes first."""

    steady: WindowStats | None = None
    rollouts: list[WindowStats] = field(default_factory=list)
    direct_rollouts: list[WindowStats] = field(default_factory=list)
    busy_rollouts: list[WindowStats] = field(default_factory=list)
    through_deployer: list[float] = field(default_factory=list)
    direct_helm: list[float] = field(default_factory=list)


def new_pods_ready(
    platform: Platform, service: str, image: str, since: float, timeout: float = 180
) -> float:
    """Seconds from ``since`` (monotonic) until the Deployment runs ``image`` and has rolled:
    every replica updated, ready and available, as the controller reports it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = platform.kubectl.json("get", "deployment", service, "-n", platform.namespace)
        status, wanted = found.get("status", {}), found["spec"]["replicas"]
        containers = found["spec"]["template"]["spec"]["containers"]
        if (
            any(c["name"] == service and c["image"] == image for c in containers)
            and status.get("observedGeneration", 0) >= found["metadata"]["generation"]
            and status.get("updatedReplicas") == wanted
            and status.get("readyReplicas") == wanted
            and status.get("availableReplicas") == wanted
            and status.get("replicas") == wanted
        ):
            return time.monotonic() - since
        time.sleep(0.1)
    raise AssertionError(f"{service} did not finish rolling within {timeout:g} s")


def direct_helm(platform: Platform, service: str, image: str) -> float:
    """``helm upgrade --install --wait`` of ``image`` run directly: seconds to all new pods."""
    values = real_pod_values(service)
    repository, _, tag = image.rpartition(":")
    values["image"] = {"repository": repository, "tag": tag}
    cluster = platform.cluster
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(values, file)
        file.flush()
        started = time.monotonic()
        cluster.helm_run(
            "upgrade", "--install", service, str(Path("charts") / service),
            "--namespace", platform.namespace,
            *release_arguments(Path.cwd(), service, image), "--values", file.name,
            "--wait", "--timeout", "180s", "--server-side=true", "--force-conflicts",
        )  # fmt: skip
        return new_pods_ready(platform, service, image, started)


async def _rollout(
    platform: Platform, label: str, roll: Callable[[str], Awaitable[float]]
) -> tuple[float, WindowStats]:
    """One rollout of order to a new image under traffic, made by ``roll(image)`` (which returns
    the seconds to all new pods ready); also the traffic's window from the start to the old pods
    gone."""
    image = await asyncio.to_thread(new_image, platform, "order")
    with traffic(platform) as load:
        await asyncio.sleep(2)
        start = load.mark(label)
        took = await roll(image)
        await asyncio.to_thread(settled, platform, "order")
        end = load.elapsed()
    window = load.report.window(start, end)
    print(f"{label}: {took:.1f} s, {window}", flush=True)
    return took, window


def _through_deployer(
    platform: Platform, stack: DeployerStack
) -> Callable[[str], Awaitable[float]]:
    """A rollout through the deployer (CI's event), until it reports success."""

    async def roll(image: str) -> float:
        began = time.monotonic()
        deployment = await stack.publish("order", data=artifact("order", image))
        took = await asyncio.to_thread(new_pods_ready, platform, "order", image, began)
        outcome = await stack.outcome(deployment, timeout=180)
        assert outcome.phase.value == "succeeded", outcome
        return took

    return roll


async def _measure(platform: Platform, stack: DeployerStack, runs: int) -> RolloutFigures:
    figures = RolloutFigures()
    for service in SERVICES:
        await asyncio.to_thread(settled, platform, service)
    with traffic(platform) as load:
        await asyncio.sleep(STEADY_SECONDS)
    figures.steady = load.report.overall()
    print(f"steady: {figures.steady}", flush=True)
    deployer = _through_deployer(platform, stack)

    async def helm(image: str) -> float:
        return await asyncio.to_thread(direct_helm, platform, "order", image)

    for run in range(runs):
        # Alternate which goes first, so that neither always follows the other's drain.
        for through_deployer in (True, False) if run % 2 == 0 else (False, True):
            if through_deployer:
                took, window = await _rollout(platform, f"rollout {run + 1} (deployer)", deployer)
                figures.through_deployer.append(took)
                figures.rollouts.append(window)
            else:
                took, window = await _rollout(platform, f"rollout {run + 1} (helm)", helm)
                figures.direct_helm.append(took)
                figures.direct_rollouts.append(window)
    with one_core_busy():
        for run in range(runs):
            _, window = await _rollout(platform, f"busy rollout {run + 1} (deployer)", deployer)
            figures.busy_rollouts.append(window)
    return figures


@asynccontextmanager
async def platform_on_a_real_cluster() -> AsyncIterator[tuple[Platform, Path]]:
    """A cluster with the real node and the platform installed on it, and a scratch directory;
    everything removed again afterwards."""
    real = await asyncio.to_thread(cluster_up)
    try:
        with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as directory:
            work = Path(directory)
            platform = await asyncio.to_thread(
                install_platform, real, work / "helm", lambda line: print(line, flush=True)
            )
            yield platform, work
    finally:
        await asyncio.to_thread(cluster_down, real)


async def run_rollout_bench(runs: int) -> RolloutFigures:
    """Start a cluster with the real node, install the platform and the deployer, measure, and
    remove everything again."""
    async with platform_on_a_real_cluster() as (platform, work):
        (work / "deployer").mkdir()
        stack = real_pods_deployer(platform, work / "deployer")
        await stack.start()
        try:
            return await _measure(platform, stack, runs)
        finally:
            await stack.stop()


def cluster_up() -> RealCluster:
    """A cluster with the machine's real node, for one bench (stale ones reaped first)."""
    cache = Path(os.environ.get("FLOTILLA_CACHE", "~/.cache/flotilla")).expanduser()
    reap_stale_runs(cache / "realpods-tests")
    run_dir, name = session_run_dir(cache)
    return RealCluster.up(run_dir, name)


def cluster_down(real: RealCluster) -> None:
    """Remove the bench's cluster and its run directory."""
    real.down()
    subprocess.run(["rm", "-rf", str(real.run_dir)], check=False)
