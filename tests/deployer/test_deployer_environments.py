"""Environments end to end: one deployer process serves dev, staging and prod (three namespaces of
the local cluster) and promotes CI's releases through their gates, over real NATS and helm.

No metric analysis here (no Prometheus): platform/deployer/tests/promotion covers that gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy_contract.events import DeployPhase
from tests.deployer.deployer_stack import DeployerStack, image
from tests.e2e.clustersupport import Helm, Kubectl

V1 = "1.1.0-b2c3d4e"
V2 = "1.2.0-c3d4e5f"
V3 = "1.3.0-d4e5f6a"
SOAK = 1.0
ENVIRONMENTS = ("dev", "staging", "prod")
FINAL = {"promoted", "failed", "superseded", "cancelled"}
Json = dict[str, Any]


def three(namespace: str, *, automatic: bool = True) -> Json:
    """dev (the test's namespace) -> staging (soak) -> prod (soak, approval)."""
    return {
        "environments": [
            {"name": "dev", "namespace": namespace},
            {
                "name": "staging",
                "namespace": f"{namespace}-staging",
                "upstream": "dev",
                "promotion": {"automatic": automatic, "soakSeconds": SOAK},
            },
            {
                "name": "prod",
                "namespace": f"{namespace}-prod",
                "upstream": "staging",
                "promotion": {"automatic": automatic, "soakSeconds": SOAK, "approval": True},
            },
        ]
    }


@contextlib.asynccontextmanager
async def running(stack: DeployerStack) -> AsyncIterator[DeployerStack]:
    """``stack`` started, and stopped (with its namespaces) however the test ends."""
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()


@pytest.fixture
async def envs(
    repo_root: Path, tmp_path: Path, kubeconfig: Path, namespace: str
) -> AsyncIterator[DeployerStack]:
    """The deployer of dev, staging and prod, deciding promotions every half second."""
    stack = DeployerStack(
        repo_root, tmp_path, kubeconfig, namespace,
        environments=three(namespace), env={"DEPLOYER_PROMOTION_SECONDS": "0.5"},
    )  # fmt: skip
    async with running(stack) as started:
        yield started


@pytest.fixture
async def by_hand(
    repo_root: Path, tmp_path: Path, kubeconfig: Path, namespace: str
) -> AsyncIterator[DeployerStack]:
    """dev, staging and prod with no automatic promotion: nothing moves unless asked."""
    stack = DeployerStack(
        repo_root, tmp_path, kubeconfig, namespace, environments=three(namespace, automatic=False)
    )
    async with running(stack) as started:
        yield started


async def call(
    stack: DeployerStack, method: str, path: str, body: Json | None = None
) -> tuple[int, Any]:
    """One API call with the admin token: (status, parsed body)."""
    async with (
        aiohttp.ClientSession(headers=stack.admin_headers) as http,
        http.request(method, stack.deployer.base_url + path, json=body) as response,
    ):
        return response.status, await response.json(content_type=None)


async def get(stack: DeployerStack, path: str) -> Any:
    """GET ``path``, which must answer 200."""
    status, body = await call(stack, "GET", path)
    assert status == 200, (path, body)
    return body


def gate(promotion: Json, name: str) -> Json:
    """One gate's result of a promotion."""
    found: Json = next(g for g in promotion["gates"] if g["gate"] == name)
    return found


def describe(promotion: Json | None) -> str:
    """Where a promotion stands and why, with its gates, for failure messages."""
    if promotion is None:
        return "no such promotion yet"
    gates = ", ".join(f"{g['gate']}={g['verdict']}" for g in promotion["gates"])
    return f"{promotion['state']}: {promotion['reason']} [{gates}]"


async def wait_promotion(
    stack: DeployerStack,
    promotion_id: str,
    done: Callable[[Json], bool],
    what: str,
    timeout: float = 30,
) -> Json:
    """Poll the promotion until ``done``; the failure says where it stands and why."""
    deadline = time.monotonic() + timeout
    last: Json | None = None
    while time.monotonic() < deadline:
        status, body = await call(stack, "GET", f"/api/promotions/{promotion_id}")
        if status == 200:
            last = body
            if done(last):
                return last
            if last["state"] in FINAL:
                break  # it will not change any more
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"{promotion_id} not {what} (waited up to {timeout}s); it is {describe(last)}\n"
        + stack.deployer.logs()[-3000:]
    )


def promoted(promotion: Json) -> bool:
    """Promoted: its deployment succeeded."""
    return bool(promotion["state"] == "promoted")


def awaits(gate_name: str) -> Callable[[Json], bool]:
    """Waiting at ``gate_name``."""

    def check(promotion: Json) -> bool:
        return bool(
            promotion["state"] == "waiting"
            and promotion["gates"]
            and gate(promotion, gate_name)["verdict"] == "waiting"
        )

    return check


async def enter(stack: DeployerStack, tag: str) -> tuple[str, str]:
    """CI publishes order at ``tag``; (the dev deployment's id, the release's id)."""
    deployment_id = await stack.publish("order", tag)
    outcome = await stack.outcome(deployment_id)
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome.reason
    assert outcome.environment == "dev"
    assert outcome.release_id is not None
    return deployment_id, outcome.release_id


async def approve(stack: DeployerStack, promotion_id: str, reason: str) -> Json:
    """A person approves the promotion through the API (the admin token)."""
    status, body = await call(
        stack, "POST", f"/api/promotions/{promotion_id}/approve", {"reason": reason}
    )
    assert status == 200, body
    approved: Json = body
    return approved


async def ship(stack: DeployerStack, tag: str) -> str:
    """``tag`` through dev, staging and prod (approved); returns the release's id."""
    _, release = await enter(stack, tag)
    await wait_promotion(stack, f"{release}.staging", promoted, "promoted")
    await wait_promotion(stack, f"{release}.prod", awaits("approval"), "awaiting approval")
    await approve(stack, f"{release}.prod", f"ship {tag}")
    await wait_promotion(stack, f"{release}.prod", promoted, "promoted")
    return release


def deployed_image(kubectl: Kubectl, namespace: str) -> str:
    """The image of order's Deployment in ``namespace``."""
    deployment = kubectl.json(
        "get", "deployments", "--namespace", namespace,
        "--selector", "app.kubernetes.io/instance=order",
    )  # fmt: skip
    (found,) = deployment["items"]
    (container,) = found["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


def helm_releases(helm: Helm, namespace: str) -> list[Json]:
    """``helm list`` of ``namespace``."""
    listed: list[Json] = json.loads(
        helm.run("list", "--namespace", namespace, "--output", "json").stdout
    )
    return listed


def namespaces(stack: DeployerStack) -> dict[str, str]:
    """Environment -> its namespace."""
    assert stack.environments is not None
    return {spec["name"]: spec["namespace"] for spec in stack.environments["environments"]}


async def test_a_release_flows_dev_staging_prod_through_its_gates(
    envs: DeployerStack, kubectl: Kubectl, helm: Helm
) -> None:
    entered, release = await enter(envs, V1)
    into_staging = await wait_promotion(envs, f"{release}.staging", promoted, "promoted")
    into_prod = await wait_promotion(
        envs, f"{release}.prod", awaits("approval"), "awaiting approval"
    )
    assert gate(into_prod, "approval")["reason"].startswith("waiting for a person's approval")
    await approve(envs, into_prod["id"], "release train 12")
    into_prod = await wait_promotion(envs, f"{release}.prod", promoted, "promoted")

    # The same image in every environment's helm release, never rebuilt.
    for environment, namespace in namespaces(envs).items():
        [listed] = helm_releases(helm, namespace)
        assert (listed["name"], listed["status"]) == ("order", "deployed"), environment
        assert deployed_image(kubectl, namespace) == image("order", V1), environment
    views = await get(envs, "/api/releases?service=order")
    [view] = [v for v in views if v["release"]["id"] == release]
    assert {s["environment"]: s["status"] for s in view["environments"]} == dict.fromkeys(
        ENVIRONMENTS, "serving"
    )

    # Every gate passed, with its evidence.
    for promotion, upstream in (
        (into_staging, entered),
        (into_prod, into_staging["deployment_id"]),
    ):
        assert {g["gate"]: g["verdict"] for g in promotion["gates"]} == dict.fromkeys(
            ("hold", "verified", "soak", "analysis", "freeze", "approval"), "passed"
        ), describe(promotion)
        verified = gate(promotion, "verified")["evidence"]
        assert verified["deployment_id"] == upstream
        assert verified["environment"] == promotion["source"]
        assert gate(promotion, "soak")["evidence"]["soak_seconds"] == SOAK
    approval = gate(into_prod, "approval")
    assert approval["evidence"]["by"] == "admin"
    assert approval["reason"] == "approved by admin: release train 12"
    assert gate(into_staging, "approval")["reason"] == "no approval required"

    # The deployments the promotions started: the same release, from a promotion.
    for promotion in (into_staging, into_prod):
        record = await get(envs, f"/api/deployments/{promotion['deployment_id']}")
        assert record["origin"] == "promotion"
        assert record["release_id"] == release
        assert record["promotion_id"] == promotion["id"]
        assert record["environment"] == promotion["environment"]
        assert record["phase"] == "succeeded"

    # The dashboard shows each environment's release of order, and the DORA figures.
    async with (
        aiohttp.ClientSession(headers=envs.admin_headers) as http,
        http.get(envs.deployer.base_url + "/fragments/environments") as response,
    ):
        assert response.status == 200
        board = await response.text()
    for environment in ENVIRONMENTS:
        assert f'<td data-environment="{environment}">' in board
    assert board.count(f"<code>{V1}</code>") == len(ENVIRONMENTS)
    assert "DORA, last 30 days" in board
    assert "<td>order</td><td>prod</td>" in board

    # Every event says which environment it is about.
    promotion_events = await envs.promotion_events("order")
    assert {(e.environment, e.state.value) for e in promotion_events} >= {
        ("staging", "waiting"), ("staging", "promoting"), ("staging", "promoted"),
        ("prod", "waiting"), ("prod", "promoting"), ("prod", "promoted"),
    }  # fmt: skip
    assert all(e.release_id == release for e in promotion_events)
    assert {(e.source, e.environment) for e in promotion_events} == {
        ("dev", "staging"),
        ("staging", "prod"),
    }
    deploy_events = [e for e in await envs.events() if e.service == "order"]
    assert {e.environment for e in deploy_events} == set(ENVIRONMENTS)
    started = {
        "dev": entered,
        "staging": into_staging["deployment_id"],
        "prod": into_prod["deployment_id"],
    }
    for environment, deployment_id in started.items():
        mine = [e for e in deploy_events if e.deployment_id == deployment_id]
        assert {e.environment for e in mine} == {environment}
        assert {e.release_id for e in mine} == {release}
        assert mine[-1].phase is DeployPhase.SUCCEEDED


async def test_a_rollback_in_prod_holds_promotion_until_the_hold_is_cleared(
    envs: DeployerStack, kubectl: Kubectl
) -> None:
    prod = namespaces(envs)["prod"]
    first = await ship(envs, V1)
    second = await ship(envs, V2)
    assert deployed_image(kubectl, prod) == image("order", V2)

    status, rollback = await call(envs, "POST", "/api/services/order/rollback?environment=prod", {})
    assert status == 202, rollback
    outcome = await envs.outcome(rollback["id"])
    assert outcome.phase is DeployPhase.SUCCEEDED, outcome.reason
    assert outcome.environment == "prod"
    assert deployed_image(kubectl, prod) == image("order", V1)
    for _ in range(50):  # the promoter takes the outcome in on its next pass
        holds = await get(envs, "/api/holds")
        if holds:
            break
        await asyncio.sleep(0.2)
    [hold] = holds
    assert (hold["environment"], hold["service"]) == ("prod", "order")
    assert rollback["id"] in hold["reason"]
    assert hold["deployment_id"] == rollback["id"]

    _, newer = await enter(envs, V3)
    await wait_promotion(envs, f"{newer}.staging", promoted, "promoted")
    waiting = await wait_promotion(envs, f"{newer}.prod", awaits("hold"), "held")
    assert "held since" in gate(waiting, "hold")["reason"]
    await asyncio.sleep(SOAK + 1)  # past its soak: the hold, not the soak, keeps it out
    listed = await get(envs, "/api/promotions?environment=prod")
    assert listed[0]["id"] == waiting["id"]
    assert listed[0]["state"] == "waiting", describe(listed[0])
    assert gate(listed[0], "hold")["verdict"] == "waiting"
    assert deployed_image(kubectl, prod) == image("order", V1)  # the rollback stands
    in_prod = {
        view["release"]["id"]: next(s for s in view["environments"] if s["environment"] == "prod")
        for view in await get(envs, "/api/releases?service=order")
    }
    assert in_prod[first]["status"] == "serving"
    assert in_prod[second]["status"] == "replaced"
    assert (in_prod[newer]["status"], in_prod[newer]["promotion_id"]) == ("waiting", waiting["id"])

    status, cleared = await call(envs, "DELETE", "/api/holds/prod/order")
    assert status == 200, cleared
    assert cleared["deployment_id"] == rollback["id"]
    assert await get(envs, "/api/holds") == []
    await wait_promotion(envs, waiting["id"], awaits("approval"), "past the hold")
    await approve(envs, waiting["id"], "the fix is in")
    await wait_promotion(envs, waiting["id"], promoted, "promoted")
    assert deployed_image(kubectl, prod) == image("order", V3)


async def test_bad_promotion_requests_are_refused_with_nothing_changed(
    by_hand: DeployerStack, helm: Helm
) -> None:
    _, release = await enter(by_hand, V1)
    before = await get(by_hand, "/api/promotions")
    assert before == []  # nothing is automatic here

    status, refused = await call(
        by_hand, "POST", "/api/promotions", {"release": release, "environment": "qa"}
    )
    assert status == 422, refused
    detail = refused["detail"]
    assert "unknown environment 'qa': known environments are dev, staging, prod" in detail
    status, refused = await call(
        by_hand, "POST", "/api/promotions", {"release": release, "environment": "prod"}
    )
    assert status == 422, refused
    detail = refused["detail"]
    assert f"{release} was never verified in staging, prod's upstream" in detail
    assert "(it is verified in dev)" in detail
    assert "environments are not skipped" in detail

    assert await get(by_hand, "/api/promotions") == before
    [view] = await get(by_hand, "/api/releases?service=order")
    assert {s["environment"]: s["status"] for s in view["environments"]} == {
        "dev": "serving",
        "staging": "not_reached",
        "prod": "not_reached",
    }
    spaces = namespaces(by_hand)
    assert helm_releases(helm, spaces["staging"]) == []
    assert helm_releases(helm, spaces["prod"]) == []


def test_a_deployer_with_a_malformed_freeze_window_refuses_to_start(
    repo_root: Path, tmp_path: Path, kubeconfig: Path
) -> None:
    namespace = "t-never-created"  # the deployer stops before it looks at the cluster
    environments = three(namespace)
    environments["environments"][2]["promotion"]["freeze"] = [
        {
            "name": "weekend",
            "timezone": "Europe/Berlin",
            "start": "2027-01-01T18:00",
            "duration": "PT62H",
            "rrule": "FREQ=SOMETIMES",
        }
    ]
    stack = DeployerStack(repo_root, tmp_path, kubeconfig, namespace, environments=environments)
    with pytest.raises(RuntimeError, match="exited at start") as refused:
        stack.deployer.start()
    assert stack.deployer.wait(timeout=5) == 2
    log = str(refused.value)
    assert "environments.2.promotion.freeze.0.rrule" in log, log
    assert "FREQ=SOMETIMES is none of YEARLY, MONTHLY, WEEKLY, DAILY" in log, log
    assert "Traceback" not in log, log
