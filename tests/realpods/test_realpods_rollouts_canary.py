"""The canary on real pods, under steady traffic through the gateway, measured by a real
Prometheus that scrapes the pods: a good order image goes through every step and is promoted
without a failed request; an image answering 500 to a fifth of its requests is aborted at the
first analysis, naming the success rate it measured and the threshold; a canary without traffic
pauses as inconclusive; a newer image mid-canary aborts it and starts its own canary; a canary of
the gateway is measured on the gateway's own traffic, counted by route.

Named to run after the rollout suites: the package's first suites expect the platform as
installed (test_realpods_platform) or no cluster up yet (test_realpods_crash)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from deploy_contract.events import CanaryState, DeployPhase
from tests.deployer.deployer_stack import DeployerStack
from tests.realpods.canaries import (
    canary_deployer_stack,
    canary_strategy,
    pod_prometheus,
    wait_for_canary,
)
from tests.realpods.realcluster import Platform
from tests.realpods.rollouts import (
    artifact,
    in_thread,
    new_image,
    no_failures,
    settled,
    traffic,
)

pytestmark = [pytest.mark.e2e, pytest.mark.real_node, pytest.mark.timeout(900)]

INTERVAL = 10
BAD_RATIO = "0.2"


@pytest.fixture(scope="module")
def prometheus(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the platform's pods."""
    with pod_prometheus(platform, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


@pytest.fixture(scope="module")
async def canary_deployer(
    platform: Platform, prometheus: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DeployerStack]:
    """A deployer whose environment gives order and the gateway the canary strategy: half the
    pods, then two measurements INTERVAL s apart; one failed measurement aborts."""
    strategy = canary_strategy(INTERVAL, count=2, failure_limit=1)
    directory = tmp_path_factory.mktemp("canary-deployer")
    stack = canary_deployer_stack(
        platform, directory, prometheus, strategy, services=("order", "gateway")
    )
    await stack.start()
    await in_thread(settled, platform, "order")
    yield stack
    await stack.stop()


def canary_pods(platform: Platform) -> list[dict[str, Any]]:
    return platform.pods(
        platform.namespace, "app.kubernetes.io/name=order,flotilla.dev/track=canary"
    )


def no_canary_left(platform: Platform) -> None:
    deployments = platform.kubectl.json(
        "get", "deployments", "-n", platform.namespace, "-l", "app.kubernetes.io/name=order"
    )
    assert [d["metadata"]["name"] for d in deployments["items"]] == ["order"]


async def publish(deployer: DeployerStack, image: str) -> str:
    return await deployer.publish("order", data=artifact("order", image))


async def test_a_good_image_goes_through_every_step_and_is_promoted_without_a_failed_request(
    platform: Platform, canary_deployer: DeployerStack
) -> None:
    image = await in_thread(new_image, platform, "order")
    with traffic(platform) as load:
        await asyncio.sleep(3)
        deployment = await publish(canary_deployer, image)
        split = await wait_for_canary(canary_deployer, deployment, CanaryState.ANALYSING)
        pods = await in_thread(canary_pods, platform)
        outcome = await canary_deployer.outcome(deployment, timeout=300)
        await in_thread(settled, platform, "order")
        await asyncio.sleep(2)
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome
    no_failures(load.report, "a good canary of order")
    assert split.canary is not None
    assert (split.canary.stable_replicas, split.canary.canary_replicas) == (1, 1)
    assert [p["spec"]["containers"][0]["image"] for p in pods] == [image]
    assert outcome.canary is not None
    assert outcome.canary.state is CanaryState.PROMOTED
    # Two passes (a first window may be inconclusive while Prometheus discovers the new pod).
    verdicts = [m.verdict for m in outcome.canary.measurements]
    assert verdicts.count("pass") == 2, outcome.canary.measurements
    assert "fail" not in verdicts, outcome.canary.measurements
    # The canary pod really served: each pass counted its own requests.
    passes = [m for m in outcome.canary.measurements if m.verdict == "pass"]
    assert all(m.canary.requests >= 10 for m in passes), passes
    await in_thread(no_canary_left, platform)
    images = {p["spec"]["containers"][0]["image"] for p in platform.service_pods("order")}
    assert images == {image}


async def test_an_image_failing_a_fifth_of_its_requests_is_aborted_at_the_first_analysis(
    platform: Platform, canary_deployer: DeployerStack
) -> None:
    stable = {p["spec"]["containers"][0]["image"] for p in platform.service_pods("order")}
    bad = await in_thread(
        new_image, platform, "order", None, {"SERVICE_FAULT_ERROR_RATIO": BAD_RATIO}
    )
    with traffic(platform) as load:
        await asyncio.sleep(3)
        load.mark("canary")
        deployment = await publish(canary_deployer, bad)
        outcome = await canary_deployer.outcome(deployment, timeout=300)
        load.mark("aborted")
        await in_thread(settled, platform, "order")
        load.mark("settled")
        await asyncio.sleep(5)
    assert outcome.phase is DeployPhase.ROLLED_BACK, outcome
    assert outcome.canary is not None
    assert outcome.canary.state is CanaryState.ABORTED
    # Aborted at the first analysis, on its first failed measurement (failure limit 1).
    measured = outcome.canary.measurements
    assert [m.verdict for m in measured].count("fail") == 1, measured
    assert measured[-1].verdict == "fail", measured
    rate = measured[-1].canary.success_rate
    assert rate is not None
    assert 0.7 <= rate <= 0.9, measured[-1]
    assert f"{100 * rate:.1f}%" in (outcome.reason or ""), outcome.reason
    assert "threshold 99.0%" in (outcome.reason or ""), outcome.reason
    # In between, at most the canary's share (half the pods) of a fifth of the requests failed;
    # afterwards the stable pods serve everything.
    report = load.report
    during = report.between("canary", "aborted")
    assert during.failed <= 0.5 * 0.2 * during.count * 1.5 + 3, during
    after = report.window(report.mark("settled"), report.elapsed)
    assert after.failed == 0, after
    await in_thread(no_canary_left, platform)
    assert {p["spec"]["containers"][0]["image"] for p in platform.service_pods("order")} == stable


async def test_a_canary_without_traffic_pauses_as_inconclusive(
    platform: Platform, canary_deployer: DeployerStack
) -> None:
    image = await in_thread(new_image, platform, "order")
    deployment = await publish(canary_deployer, image)
    paused = await wait_for_canary(canary_deployer, deployment, CanaryState.PAUSED)
    assert paused.canary is not None
    assert "no traffic on the canary" in (paused.canary.reason or ""), paused.canary
    assert [m.verdict for m in paused.canary.measurements] == ["inconclusive"] * 2
    await asyncio.sleep(INTERVAL + 2)
    assert not [e for e in await canary_deployer.events(deployment) if e.phase.terminal]
    # A person aborts it through the API.
    async with httpx.AsyncClient(base_url=canary_deployer.deployer.base_url) as api:
        answer = await api.post(
            f"/api/deployments/{deployment}/canary/abort",
            headers=canary_deployer.admin_headers,
            json={"note": "no traffic to judge it by"},
        )
    assert answer.status_code == 202, answer.text
    outcome = await canary_deployer.outcome(deployment, timeout=180)
    assert outcome.phase is DeployPhase.ROLLED_BACK
    assert "aborted by admin (no traffic to judge it by)" in (outcome.reason or ""), outcome
    await in_thread(no_canary_left, platform)


async def test_a_newer_image_mid_canary_aborts_it_and_starts_its_own(
    platform: Platform, canary_deployer: DeployerStack
) -> None:
    first = await in_thread(new_image, platform, "order")
    second = await in_thread(new_image, platform, "order")
    with traffic(platform) as load:
        await asyncio.sleep(3)
        older = await publish(canary_deployer, first)
        await wait_for_canary(canary_deployer, older, CanaryState.ANALYSING)
        newer = await publish(canary_deployer, second)
        superseded = await canary_deployer.outcome(older, timeout=180)
        analysing = await wait_for_canary(canary_deployer, newer, CanaryState.ANALYSING)
        outcome = await canary_deployer.outcome(newer, timeout=300)
        await in_thread(settled, platform, "order")
        await asyncio.sleep(2)
    assert superseded.phase is DeployPhase.SUPERSEDED, superseded
    assert superseded.superseded_by == newer
    assert "superseded by deployment" in (superseded.reason or "")
    assert analysing.canary is not None
    assert analysing.canary.canary_image == second
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome
    no_failures(load.report, "a canary superseded by a newer one")
    images = {p["spec"]["containers"][0]["image"] for p in platform.service_pods("order")}
    assert images == {second}


def gateway_canary_routes(prometheus: str) -> dict[str, float]:
    """The gateway canary's requests over the last ten minutes, by route (Prometheus keeps the
    series of the canary pod after it is gone)."""
    query = (
        'sum by (route) (max_over_time(http_requests_total{service="gateway", '
        'track="canary"}[10m]))'
    )
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10)
    answer.raise_for_status()
    return {
        series["metric"].get("route", ""): float(series["value"][1])
        for series in answer.json()["data"]["result"]
    }


async def test_a_gateway_canary_is_measured_on_its_own_traffic_by_route(
    platform: Platform, canary_deployer: DeployerStack, prometheus: str
) -> None:
    image = await in_thread(new_image, platform, "gateway")
    with traffic(platform) as load:
        await asyncio.sleep(3)
        deployment = await canary_deployer.publish("gateway", data=artifact("gateway", image))
        outcome = await canary_deployer.outcome(deployment, timeout=300)
        await in_thread(settled, platform, "gateway")
        await asyncio.sleep(2)
    assert outcome.phase is DeployPhase.SUCCEEDED, (outcome.reason, outcome.canary)
    no_failures(load.report, "a good canary of the gateway")
    assert outcome.canary is not None
    passes = [m for m in outcome.canary.measurements if m.verdict == "pass"]
    assert len(passes) == 2, outcome.canary.measurements
    # The gateway's own proxied requests are its traffic (they were all "<unmatched>" before).
    assert all(m.canary.requests >= 10 for m in passes), passes
    routes = await in_thread(gateway_canary_routes, prometheus)
    proxied = {route: count for route, count in routes.items() if route.startswith("/api/")}
    assert sum(proxied.values()) >= 20, routes
    images = {p["spec"]["containers"][0]["image"] for p in platform.service_pods("gateway")}
    assert images == {image}
