"""Deploy policy end to end: the real deployer, NATS and the local cluster. Refused values are
rejected at intake (no helm runs), scoped tokens limit the API, approval-gated changes wait."""

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy_contract.events import DeployEventData, DeployPhase
from tests.deployer.deployer_stack import DeployerStack, image

V1 = "1.0.0-a1b2c3d"
V2 = "1.1.0-b2c3d4e"
V3 = "1.2.0-c3d4e5f"
BOUNDED = {"replicaCount": {"min": 1, "max": 10}, "podAnnotations": {}}
POLICY: dict[str, Any] = {
    # Wide on purpose: the guardrails must hold even where the policy allows a path.
    "default": {
        "allow": {
            **BOUNDED,
            "extraSecretEnv": {},
            "serviceAccount": {},
            "networkPolicy": {},
            "config": {},
        }
    },
    "services": {"payment": {"allow": BOUNDED, "requireApproval": ["replicas-changed"]}},
}
VIEWER, CI_ORDER, LEAD = "viewer-token-0123456789", "ci-order-token-0123456789", "lead-0123456789ab"
TOKENS = [
    {"name": "viewer", "token": VIEWER, "scopes": ["read"]},
    {"name": "ci-order", "token": CI_ORDER, "scopes": ["read", "deploy"], "services": ["order"]},
    {"name": "lead", "token": LEAD, "scopes": ["read", "approve"]},
]


@pytest.fixture
async def guarded(
    repo_root: Path, tmp_path: Path, kubeconfig: Path, namespace: str
) -> AsyncIterator[DeployerStack]:
    stack = DeployerStack(repo_root, tmp_path, kubeconfig, namespace, policy=POLICY, tokens=TOKENS)
    await stack.start()
    yield stack
    await stack.stop()


async def call(
    stack: DeployerStack, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, stack.deployer.base_url + path, json=body) as response,
    ):
        return response.status, await response.json()


def request(service: str, tag: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "service": service,
        "image": image(service, tag),
        "commit": tag.rsplit("-", 1)[-1],
        "pipeline_id": "e2e-api",
        "values": values or {},
    }


async def wait_for_phase(
    stack: DeployerStack, deployment_id: str, phase: DeployPhase, timeout: float = 30
) -> DeployEventData:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in await stack.events(deployment_id):
            if event.phase is phase:
                return event
        await asyncio.sleep(0.2)
    phases = [e.phase.value for e in await stack.events(deployment_id)]
    raise AssertionError(f"{deployment_id} never reached {phase.value}; events: {phases}")


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "another service's ServiceAccount": (
        {"serviceAccount": {"name": "payment"}},
        "values.serviceAccount.name: 'payment' is not a ServiceAccount of order",
    ),
    "another service's Secret": (
        {"extraSecretEnv": [{"name": "DB", "existingSecret": "payment-database", "key": "url"}]},
        "values.extraSecretEnv[0].existingSecret: 'payment-database' is not a Secret of order",
    ),
    "the NetworkPolicy disabled": (
        {"networkPolicy": {"enabled": False}},
        "values.networkPolicy.enabled: true -> false: a deployment cannot change the NetworkPolicy",
    ),
    "replicas above the bound": (
        {"replicaCount": 100000},
        "values.replicaCount: 100000 is above the maximum 10 (deploy policy)",
    ),
    "a value the schema refuses": (
        {"config": {"logLevel": "LOUD"}},
        'values.config.logLevel: "LOUD" is not one of',
    ),
    "a path the policy does not allow": (
        {"service": {"type": "NodePort"}},
        "values.service.type: the deploy policy does not let a deployment set this path",
    ),
}


async def test_refused_values_are_rejected_at_intake_and_no_helm_runs(
    guarded: DeployerStack,
) -> None:
    helm_runs = len(guarded.helm_calls())
    ids = {
        case: await guarded.publish("order", V1, values=values)
        for case, (values, _) in REFUSED.items()
    }
    for case, deployment_id in ids.items():
        outcome = await guarded.outcome(deployment_id)
        assert outcome.phase is DeployPhase.REJECTED, case
        assert outcome.reason is not None
        assert REFUSED[case][1] in outcome.reason, (case, outcome.reason)
        phases = [e.phase for e in await guarded.events(deployment_id)]
        assert phases == [DeployPhase.REJECTED], (case, phases)  # never queued nor started
    assert guarded.helm_calls()[helm_runs:] == []
    # The API refuses the same values the same way, before queueing anything.
    status, body = await call(
        guarded, "POST", "/api/deployments", "not-a-token", request("order", V1)
    )
    assert status == 401, body
    status, body = await call(
        guarded,
        "POST",
        "/api/deployments",
        CI_ORDER,
        request("order", V1, {"networkPolicy": {"enabled": False}}),
    )
    assert status == 422
    assert "values.networkPolicy.enabled" in str(body)
    assert guarded.helm_calls()[helm_runs:] == []


async def test_an_allowed_values_change_deploys(guarded: DeployerStack) -> None:
    deployment_id = await guarded.publish("order", V1, values={"replicaCount": 3})
    outcome = await guarded.outcome(deployment_id)
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome.reason
    assert len(guarded.helm_calls("upgrade", "order")) == 1


async def test_tokens_are_scoped_and_every_refusal_names_the_scope(guarded: DeployerStack) -> None:
    status, body = await call(guarded, "POST", "/api/deployments", VIEWER, request("order", V1))
    assert status == 403
    assert "needs the deploy scope for order; token 'viewer' has read" in body["detail"]
    status, body = await call(guarded, "POST", "/api/deployments", CI_ORDER, request("payment", V1))
    assert status == 403
    assert "needs the deploy scope for payment; token 'ci-order'" in body["detail"]
    status, body = await call(guarded, "POST", "/api/services/order/rollback", CI_ORDER, {})
    assert status == 403
    assert "rollback scope" in body["detail"]
    status, body = await call(guarded, "GET", "/api/services", VIEWER)
    assert status == 200
    assert {view["service"] for view in body} >= {"auth", "order", "payment", "gateway"}
    status, body = await call(guarded, "GET", "/api/services", CI_ORDER)
    assert [view["service"] for view in body] == ["order"]
    status, body = await call(guarded, "POST", "/api/deployments", CI_ORDER, request("order", V1))
    assert status == 202, body
    assert (await guarded.outcome(body["id"])).phase is DeployPhase.SUCCEEDED
    status, body = await call(guarded, "GET", f"/api/deployments/{body['id']}", VIEWER)
    assert status == 200
    assert body["phase"] == "succeeded"
    async with aiohttp.ClientSession() as http, http.get(guarded.deployer.base_url + "/") as page:
        assert page.status == 401  # the dashboard needs a read token too
        assert "Basic" in page.headers["WWW-Authenticate"]
    basic = base64.b64encode(f"someone:{VIEWER}".encode()).decode()
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Basic {basic}"}) as http,
        http.get(guarded.deployer.base_url + "/") as page,
    ):
        assert page.status == 200


async def test_an_approval_gated_change_waits_until_approved_then_deploys_once(
    guarded: DeployerStack,
) -> None:
    first = await guarded.publish("payment", V1)  # a first install: nothing to approve
    assert (await guarded.outcome(first)).phase is DeployPhase.SUCCEEDED
    gated = await guarded.publish("payment", V2, values={"replicaCount": 3})
    pending = await wait_for_phase(guarded, gated, DeployPhase.PENDING_APPROVAL)
    assert pending.approvals_needed == ["replicas-changed: Deployment/payment replicas 1 -> 3 (x3)"]
    assert pending.plan is not None
    await asyncio.sleep(1.5)
    assert [e.phase for e in await guarded.events(gated)][-1] is DeployPhase.PENDING_APPROVAL
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {VIEWER}"}) as http,
        http.get(guarded.deployer.base_url + "/") as page,
    ):
        assert f"deployer approve {gated}" in await page.text()
    assert len(guarded.helm_calls("upgrade", "payment")) == 1  # only the first install ran

    status, body = await call(guarded, "POST", f"/api/deployments/{gated}/approve", VIEWER)
    assert status == 403
    assert "approve scope for payment" in body["detail"]
    status, body = await call(
        guarded, "POST", f"/api/deployments/{gated}/approve", LEAD, {"note": "load test"}
    )
    assert status == 200, body
    assert body["phase"] == "queued"
    assert body["approved_by"] == "lead (load test)"
    outcome = await guarded.outcome(gated)
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome.reason
    assert len(guarded.helm_calls("upgrade", "payment")) == 2  # deployed once
    assert [e.phase.value for e in await guarded.events(gated)].count("started") == 1
    status, body = await call(guarded, "POST", f"/api/deployments/{gated}/approve", LEAD)
    assert status == 409
    assert "is succeeded, not pending_approval" in body["detail"]

    # A denied one ends rejected; one superseded by a newer deployment ends superseded.
    denied = await guarded.publish("payment", V3, values={"replicaCount": 9})
    await wait_for_phase(guarded, denied, DeployPhase.PENDING_APPROVAL)
    cli = await asyncio.to_thread(  # the deployer CLI, as a person would deny it
        subprocess.run,
        [str(Path(sys.executable).parent / "deployer"), "deny", denied],
        env={**os.environ, "DEPLOYER_URL": guarded.deployer.base_url, "DEPLOYER_API_TOKEN": LEAD},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == f"{denied}: rejected (denied by lead)"
    outcome = await guarded.outcome(denied)
    assert outcome.phase is DeployPhase.REJECTED
    assert outcome.reason == "denied by lead"
    waiting = await guarded.publish("payment", V3, values={"replicaCount": 9})
    await wait_for_phase(guarded, waiting, DeployPhase.PENDING_APPROVAL)
    newer = await guarded.publish("payment", "1.3.0-d4e5f6a", values={"replicaCount": 3})
    assert (await guarded.outcome(waiting)).phase is DeployPhase.SUPERSEDED
    assert (await guarded.outcome(newer)).phase is DeployPhase.SUCCEEDED
    assert len(guarded.helm_calls("upgrade", "payment")) == 3
