"""The deployer as a reconciler, end to end on the local control plane: a no-op plan runs no helm
upgrade, and hand-made changes of the live objects are reported as drift (warn), reverted
(correct), or not reported at all where an ignore rule says so."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy_contract.drift import DriftReport
from deploy_contract.events import DeployPhase
from tests.deployer.deployer_stack import DeployerStack, image
from tests.e2e.clustersupport import Helm, Kubectl

V1 = "1.0.0-a1b2c3d"
INTERVAL = 2.0
DRIFT_RULES = {
    "default": {"mode": "warn"},
    "services": {
        "payment": {"mode": "correct"},
        "auth": {"mode": "warn", "ignore": [{"kind": "Deployment", "paths": ["/spec/replicas"]}]},
    },
}


async def api(stack: DeployerStack, method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession(headers=stack.admin_headers) as http,
        http.request(method, stack.deployer.base_url + path, json=body) as response,
    ):
        assert response.status < 300, await response.text()
        return await response.json()


def history(helm: Helm, namespace: str, release: str) -> list[dict[str, Any]]:
    out = helm.run("history", release, "--namespace", namespace, "--output", "json").stdout
    revisions: list[dict[str, Any]] = json.loads(out)
    return revisions


async def test_a_no_op_plan_runs_no_helm_upgrade_and_adds_no_revision(
    stack: DeployerStack, helm: Helm
) -> None:
    first = await stack.outcome(await stack.publish("order", V1))
    assert first.phase is DeployPhase.SUCCEEDED
    revisions = history(helm, stack.namespace, "order")
    upgrades = len(stack.helm_calls("upgrade"))

    again = await stack.publish("order", V1)  # another pipeline run of the same build
    outcome = await stack.outcome(again)
    assert outcome.phase is DeployPhase.UNCHANGED, outcome
    assert outcome.plan is not None
    assert outcome.plan["action"] == "no-op"
    assert outcome.reason
    assert "no helm upgrade ran" in outcome.reason
    assert [e.phase for e in await stack.events(again)] == [
        DeployPhase.QUEUED,
        DeployPhase.UNCHANGED,
    ]
    assert len(stack.helm_calls("upgrade")) == upgrades
    assert history(helm, stack.namespace, "order") == revisions

    body = {
        "service": "order", "image": image("order", V1), "commit": "a1b2c3d",
        "pipeline_id": "e2e-force", "force": True,
    }  # fmt: skip
    forced = await api(stack, "POST", "/api/deployments", body)
    assert (await stack.outcome(forced["id"])).phase is DeployPhase.SUCCEEDED
    assert len(history(helm, stack.namespace, "order")) == len(revisions) + 1


@pytest.fixture
async def drifting(
    repo_root: Path, tmp_path: Path, kubeconfig: Path, namespace: str
) -> AsyncIterator[DeployerStack]:
    env = {"DEPLOYER_DRIFT": json.dumps(DRIFT_RULES), "DEPLOYER_DRIFT_INTERVAL_SECONDS": "2"}
    stack = DeployerStack(repo_root, tmp_path, kubeconfig, namespace, env=env)
    await stack.start()
    yield stack
    await stack.stop()


def live_image(kubectl: Kubectl, namespace: str, service: str) -> str:
    deployment = kubectl.json("get", "deployment", service, "--namespace", namespace)
    found: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return found


async def next_report(stack: DeployerStack, service: str, after: int, within: float) -> DriftReport:
    """The first drift report of ``service`` beyond the first ``after`` ones, within seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        reports = await stack.drift_reports(service)
        if len(reports) > after:
            return reports[after]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no drift report of {service} within {within} s")


async def test_hand_made_changes_are_drift_reported_corrected_or_ignored(
    drifting: DeployerStack, kubectl: Kubectl
) -> None:
    stack, ns = drifting, drifting.namespace
    ids = [await stack.publish(service, V1) for service in ("order", "payment", "auth")]
    for deployment_id in ids:
        assert (await stack.outcome(deployment_id)).phase is DeployPhase.SUCCEEDED
    await asyncio.sleep(2 * INTERVAL)  # checks of the fresh releases: nothing to report
    assert await stack.drift_reports("order") == []

    hand = image("order", "hotfix-by-hand")
    for service in ("order", "payment"):
        kubectl.run("set", "image", f"deployment/{service}", f"{service}={hand}", "-n", ns)
    kubectl.run("scale", "deployment/auth", "--replicas=3", "-n", ns)
    changed = time.monotonic()

    # warn: reported within one interval (plus the check itself), naming container and images.
    warned = await next_report(stack, "order", 0, within=INTERVAL + 3)
    assert time.monotonic() - changed <= INTERVAL + 3
    assert not warned.corrected
    [field] = [f for f in warned.fields if f.path.endswith(".image")]
    assert field.object == "Deployment/order"
    assert field.path == "spec.template.spec.containers[order].image"
    assert (field.before, field.after) == (hand, image("order", V1))
    assert live_image(kubectl, ns, "order") == hand  # left alone

    # correct: reapplied, and reported as corrected.
    corrected = await next_report(stack, "payment", 0, within=INTERVAL + 3)
    assert corrected.corrected
    assert any(f.path == "spec.template.spec.containers[payment].image" for f in corrected.fields)
    assert live_image(kubectl, ns, "payment") == image("payment", V1)

    # The ignored pointer: a scale by hand is not drift.
    await asyncio.sleep(2 * INTERVAL)
    assert await stack.drift_reports("auth") == []
    scaled = kubectl.json("get", "deployment", "auth", "-n", ns)
    assert scaled["spec"]["replicas"] == 3

    # On demand, through the API and the CLI; the metric and the services view agree.
    [report] = await api(stack, "POST", "/api/drift?service=auth")
    assert report["fields"] == []
    assert report["error"] is None
    views = {v["service"]: v for v in await api(stack, "GET", "/api/services")}
    assert views["order"]["drift"]["fields"]
    cli = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).parent / "deployer"), "drift", "order",
         "--url", stack.deployer.base_url,
         "--token", stack.admin_headers["Authorization"].removeprefix("Bearer ")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 1, cli.stderr
    assert f"containers[order].image: live {hand} -> manifest {image('order', V1)}" in cli.stdout
    async with (
        aiohttp.ClientSession() as http,
        http.get(stack.deployer.base_url + "/metrics") as response,
    ):
        metrics = await response.text()
    assert 'deployer_drifted_fields{environment="development",service="order"} 1.0' in metrics
    async with (
        aiohttp.ClientSession(headers=stack.admin_headers) as http,
        http.get(stack.deployer.base_url + "/") as response,
    ):
        page = await response.text()
    assert "1 field drifted" in page
    assert f"Deployment/order spec.template.spec.containers[order].image: {hand}" in page
    assert (
        'deployer_drift_corrections_total{environment="development",service="payment"}' in metrics
    )
