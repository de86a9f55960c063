"""The deployer end to end: pipeline events over real NATS drive real helm on the local cluster."""

import asyncio
import time
from typing import Any

import aiohttp

from deploy_contract.events import DeployPhase
from tests.deployer.deployer_stack import API_TOKEN, SERVICES, DeployerStack
from tests.e2e.clustersupport import Kubectl

V1 = "1.0.0-a1b2c3d"
V2 = "1.1.0-b2c3d4e"


def replica_sets(kubectl: Kubectl, namespace: str, service: str) -> dict[str, dict[str, Any]]:
    listing = kubectl.json(
        "get", "replicasets", "--namespace", namespace,
        "--selector", f"app.kubernetes.io/instance={service}",
    )  # fmt: skip
    return {
        rs["metadata"]["name"]: {
            "uid": rs["metadata"]["uid"],
            "revision": rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision"),
            "replicas": rs["spec"]["replicas"],
        }
        for rs in listing["items"]
    }


async def deploy_all(stack: DeployerStack, tag: str) -> dict[str, float]:
    """Deploy every service at ``tag`` at once; returns each deployment's started->done time."""
    ids = {service: await stack.publish(service, tag) for service in SERVICES}
    outcomes = await asyncio.gather(*(stack.outcome(i) for i in ids.values()))
    assert [o.phase for o in outcomes] == [DeployPhase.SUCCEEDED] * len(SERVICES), outcomes
    durations = {}
    for service, deployment_id in ids.items():
        record = await api_get(stack, f"/api/deployments/{deployment_id}")
        started = _time(record["started_at"])
        durations[service] = _time(record["finished_at"]) - started
    return durations


def _time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


async def api_get(stack: DeployerStack, path: str) -> Any:
    async with (
        aiohttp.ClientSession(headers=stack.admin_headers) as http,
        http.get(stack.deployer.base_url + path) as r,
    ):
        assert r.status == 200, await r.text()
        return await r.json()


async def test_four_services_deploy_concurrently(stack: DeployerStack) -> None:
    started = time.monotonic()
    durations = await deploy_all(stack, V1)
    wall = time.monotonic() - started
    assert wall <= 1.5 * max(durations.values()) + 2.0, (wall, durations)


async def test_an_order_event_rolls_only_order(stack: DeployerStack, kubectl: Kubectl) -> None:
    await deploy_all(stack, V1)
    before = {s: replica_sets(kubectl, stack.namespace, s) for s in SERVICES}

    deployment_id = await stack.publish("order", V2)
    outcome = await stack.outcome(deployment_id)
    assert outcome.phase is DeployPhase.SUCCEEDED
    started = next(e for e in await stack.events(deployment_id) if e.phase is DeployPhase.STARTED)
    assert started.plan is not None
    (workload,) = started.plan["workloads"]
    assert workload["change"] == "rollout"
    assert "image" in workload["fields"]

    after = {s: replica_sets(kubectl, stack.namespace, s) for s in SERVICES}
    for service in ("auth", "payment", "gateway"):
        assert after[service] == before[service], f"{service} was touched"
    new = set(after["order"]) - set(before["order"])
    assert len(new) == 1
    (old,) = before["order"]
    assert after["order"][old]["replicas"] == 0


async def test_a_replica_only_change_scales_without_a_new_replicaset(
    stack: DeployerStack, kubectl: Kubectl
) -> None:
    await stack.outcome(await stack.publish("payment", V1))
    before = replica_sets(kubectl, stack.namespace, "payment")
    deployment_id = await stack.publish("payment", V1, values={"replicaCount": 3})
    assert (await stack.outcome(deployment_id)).phase is DeployPhase.SUCCEEDED
    started = next(e for e in await stack.events(deployment_id) if e.phase is DeployPhase.STARTED)
    assert started.plan is not None
    assert [w["change"] for w in started.plan["workloads"]] == ["scale-only"]
    after = replica_sets(kubectl, stack.namespace, "payment")
    assert set(after) == set(before)
    assert [rs["replicas"] for rs in after.values()] == [3]


async def test_a_never_ready_image_fails_and_rolls_back(
    stack: DeployerStack, kubectl: Kubectl
) -> None:
    await stack.outcome(await stack.publish("gateway", V1))
    serving = replica_sets(kubectl, stack.namespace, "gateway")
    deployment_id = await stack.publish("gateway", "1.2.0-neverready-c3d4e5f")
    outcome = await stack.outcome(deployment_id, timeout=90)
    phases = [e.phase for e in await stack.events(deployment_id)]
    # One terminal event: rolled_back says what failed; no failed event before it.
    assert DeployPhase.FAILED not in phases
    assert outcome.phase is DeployPhase.ROLLED_BACK
    assert outcome.reason
    assert outcome.reason.startswith("the rollout failed and was rolled back")
    assert outcome.helm_stderr
    views = {v["service"]: v for v in await api_get(stack, "/api/services")}
    assert views["gateway"]["release_status"] == "deployed"
    assert views["gateway"]["image"].endswith(V1)
    # The last outcome is the rollback; what serves, and what newer images compare with, is V1.
    last = views["gateway"]["last"]
    assert (last["phase"], last["deployment_id"]) == ("rolled_back", deployment_id)
    assert last["image"].endswith(V1)
    assert last["revision"] == views["gateway"]["revision"]
    (old_name,) = serving
    assert replica_sets(kubectl, stack.namespace, "gateway")[old_name]["replicas"] == 1


async def test_duplicates_run_helm_once_and_a_burst_ends_on_the_newest(
    stack: DeployerStack,
) -> None:
    first = await stack.publish("auth", V1)
    await stack.outcome(first)
    # The same event delivered twice (JetStream's de-duplication bypassed on purpose).
    event = stack.artifact_event("auth", V2)
    again = event.id
    for message_id in ("first-copy", "second-copy"):
        await stack.ci.js.publish(
            "pipeline.artifact.auth", event.to_bytes(), headers={"Nats-Msg-Id": message_id}
        )
    assert (await stack.outcome(again)).phase is DeployPhase.SUCCEEDED
    history = await api_get(stack, "/api/deployments?service=auth")
    assert [d["id"] for d in history].count(again) == 1

    revisions_before = await api_get(stack, "/api/services")
    auth_before = next(v for v in revisions_before if v["service"] == "auth")["revision"]
    ids = [await stack.publish("auth", f"1.2.{n}-d4e5f6a") for n in range(10)]
    outcomes = await asyncio.gather(*(stack.outcome(i) for i in ids))
    assert outcomes[-1].phase is DeployPhase.SUCCEEDED
    assert {o.phase for o in outcomes[:-1]} <= {DeployPhase.SUCCEEDED, DeployPhase.SUPERSEDED}
    views = {v["service"]: v for v in await api_get(stack, "/api/services")}
    assert views["auth"]["image"].endswith("1.2.9-d4e5f6a")
    assert views["auth"]["revision"] - auth_before <= 2


async def test_bad_events_are_rejected_with_their_reason(stack: DeployerStack) -> None:
    await stack.outcome(await stack.publish("order", V2))
    cases = {
        await stack.publish("order", "latest"): "mutable",
        await stack.publish("inventory", V1): "unknown service 'inventory'",
        await stack.publish("order", data={"service": "order"}): "missing or malformed fields",
        await stack.publish("order", V1): "older than the deployed",
    }
    for deployment_id, reason in cases.items():
        outcome = await stack.outcome(deployment_id)
        assert outcome.phase is DeployPhase.REJECTED
        assert outcome.reason is not None
        assert reason in outcome.reason, outcome.reason
    await stack.ci.nc.publish("pipeline.artifact.order", b"{not json")
    await stack.ci.nc.flush()
    deadline = time.monotonic() + 20
    while True:
        rejected = [e for e in await stack.events() if e.phase is DeployPhase.REJECTED]
        malformed = [e for e in rejected if e.reason and e.reason.startswith("malformed event")]
        if malformed or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert malformed, [e.reason for e in rejected]
    views = {v["service"]: v for v in await api_get(stack, "/api/services")}
    assert views["order"]["image"].endswith(V2)  # nothing else was deployed


async def test_kill_9_during_an_upgrade_resumes_to_a_terminal_state(
    stack: DeployerStack,
) -> None:
    await stack.outcome(await stack.publish("payment", V1))
    slow = await stack.publish(
        "payment", V2, values={"podAnnotations": {"flotilla.dev/ready-after": "4s"}}
    )
    deadline = time.monotonic() + 30
    while not any(e.phase is DeployPhase.STARTED for e in await stack.events(slow)):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # helm is upgrading now
    stack.deployer.kill()
    await stack.start_deployer()
    outcome = await stack.outcome(slow, timeout=90)
    assert outcome.phase is DeployPhase.SUCCEEDED
    views = {v["service"]: v for v in await api_get(stack, "/api/services")}
    assert views["payment"]["release_status"] == "deployed"
    assert views["payment"]["image"].endswith(V2)


async def test_the_api_needs_the_token_to_change_anything(stack: DeployerStack) -> None:
    body = {"service": "order", "image": "registry.local/order-service:" + V1,
            "commit": "a1b2c3d", "pipeline_id": "manual"}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        url = stack.deployer.base_url + "/api/deployments"
        async with http.post(url, json=body) as response:
            assert response.status == 401
        async with http.post(url, json=body, headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with http.post(url, json=body, headers=headers) as response:
            assert response.status == 202
            deployment_id = (await response.json())["id"]
    assert (await stack.outcome(deployment_id)).phase is DeployPhase.SUCCEEDED
