"""How long a bad canary takes to abort on real pods under traffic: an order image answering 500
to a fifth of its requests goes out as a canary, measured by a real Prometheus; the time from its
analysis starting to the abort being done is compared with the configured interval x failure
limit (the least it can take). One cluster with the machine's real node, the whole platform."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from deploy_contract.events import CanaryState, DeployPhase
from tests.bench.rollout_bench import platform_on_a_real_cluster
from tests.deployer.deployer_stack import DeployerStack
from tests.realpods.canaries import (
    canary_deployer_stack,
    canary_strategy,
    pod_prometheus,
    wait_for_canary,
)
from tests.realpods.realcluster import Platform
from tests.realpods.rollouts import artifact, new_image, settled, traffic

INTERVAL_SECONDS = 10
FAILURE_LIMIT = 2
FAULT_ENV = {"SERVICE_FAULT_ERROR_RATIO": "0.2"}


@dataclass
class CanaryAbort:
    """One bad canary: seconds from the event to the analysis, from the analysis to the abort
    done (the stable pods serving everything), and the requests in between."""

    to_analysis: float
    analysis_to_abort: float
    requests: int
    failed: int


@dataclass
class CanaryFigures:
    """What the canary bench measured."""

    interval_seconds: int = INTERVAL_SECONDS
    failure_limit: int = FAILURE_LIMIT
    aborts: list[CanaryAbort] = field(default_factory=list)


async def run_canary_bench(runs: int) -> CanaryFigures:
    """Start a cluster with the real node, install the platform, Prometheus and a deployer with
    order's canary strategy, abort ``runs`` bad canaries, and remove everything again."""
    figures = CanaryFigures()
    async with platform_on_a_real_cluster() as (platform, work):
        with pod_prometheus(platform, work / "prometheus") as prometheus:
            strategy = canary_strategy(INTERVAL_SECONDS, FAILURE_LIMIT + 1, FAILURE_LIMIT)
            (work / "deployer").mkdir()
            stack = canary_deployer_stack(platform, work / "deployer", prometheus, strategy)
            await stack.start()
            try:
                for run in range(runs):
                    figures.aborts.append(await _bad_canary(platform, stack, run))
                    print(f"canary {run}: {figures.aborts[-1]}", flush=True)
            finally:
                await stack.stop()
    return figures


async def _bad_canary(platform: Platform, stack: DeployerStack, run: int) -> CanaryAbort:
    await asyncio.to_thread(settled, platform, "order")
    bad = await asyncio.to_thread(new_image, platform, "order", None, FAULT_ENV)
    with traffic(platform) as load:
        await asyncio.sleep(2)
        start = load.mark(f"canary {run}")
        began = time.monotonic()
        deployment = await stack.publish("order", data=artifact("order", bad))
        await wait_for_canary(stack, deployment, CanaryState.ANALYSING)
        analysing = time.monotonic()
        outcome = await stack.outcome(deployment, timeout=300)
        done = time.monotonic()
        end = load.elapsed()
    assert outcome.phase is DeployPhase.ROLLED_BACK, outcome
    window = load.report.window(start, end)
    return CanaryAbort(analysing - began, done - analysing, window.count, window.failed)
