"""The reconcile loop end to end over in-memory ports: every path a deployment can take, fast.

The same loop runs against the real helm, NATS and Kubernetes API in tests/deployer and
tests/realpods; here each port is a memory twin, so a case takes milliseconds and can stage
exactly the failure it needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy_contract.drift import DriftMode
from deploy_contract.events import ArtifactPublished, DeployPhase
from deployer.canary.control import Command
from deployer.canary.registry import NoCanaryError
from deployer.drift.config import DriftConfig, DriftRules
from deployer.intake.policy import DeployPolicy
from deployer.orchestrator import Orchestrator
from deployer.reconcile.objectkey import ObjectKey
from deployer.records import DeploymentRecord, Origin
from deployer.settings import DeployerSettings
from deployer.targets import Target
from tests.deployer.memory_ports import (
    MemoryObjects,
    MemoryPublisher,
    MemoryReleases,
    MemoryStore,
    memory_ports,
    transient,
)

CHARTS = Path(__file__).resolve().parents[4] / "charts"
REPOSITORY = "registry.local/order-service"
ORDER = Target("development", "order")
DEPLOYMENT = ObjectKey("apps/v1", "Deployment", "order")


def image_values(tag: str, **more: Any) -> dict[str, Any]:
    """The values of a release of ``order`` at ``tag``."""
    return {"image": {"repository": REPOSITORY, "tag": tag, "digest": ""}, **more}


@dataclass
class World:
    """An orchestrator over memory ports, and the ports to stage and inspect."""

    orchestrator: Orchestrator
    releases: MemoryReleases
    store: MemoryStore
    events: MemoryPublisher
    objects: MemoryObjects | None

    async def deploy(self, tag: str, **values: Any) -> DeploymentRecord:
        """Queue a deployment of ``order`` at ``tag`` (as a pipeline event would)."""
        request = ArtifactPublished(
            service="order",
            image=f"{REPOSITORY}:{tag}",
            commit=tag.rsplit("-", 1)[1],
            pipeline_id=f"run-{tag}",
            values=values,
        )
        return await self.orchestrator.admission.enqueue(
            f"run-{tag}", request, Origin.PIPELINE, None
        )

    async def ended(self, deployment_id: str) -> DeploymentRecord:
        """The record once every lane is idle."""
        await self.orchestrator.wait_idle()
        return self.store.records[deployment_id]

    def phases(self, deployment_id: str) -> list[str]:
        """The phases published for one deployment."""
        phases: list[str] = self.events.phases(deployment_id)
        return phases


def world(
    *,
    objects: MemoryObjects | None = None,
    policy: DeployPolicy | None = None,
    drift: DriftConfig | None = None,
) -> World:
    """A deployer of ``order`` whose release runs 1.0.0."""
    releases = MemoryReleases(objects=objects)
    releases.install("order", image_values("1.0.0-aaaaaaa"))
    store, events = MemoryStore(), MemoryPublisher()
    ports = memory_ports(releases, store, events)
    settings = DeployerSettings(retry_seconds=0.001, fail_fast_restarts=0)
    orchestrator = Orchestrator(
        settings, ports, policy, drift=drift, charts={"order": CHARTS / "order"}
    )
    return World(orchestrator, releases, store, events, objects)


@pytest.fixture
async def memory() -> AsyncIterator[World]:
    made = world()
    yield made
    await made.orchestrator.stop(1)


async def test_a_no_op_is_skipped_without_an_upgrade(memory: World) -> None:
    deployed = await memory.deploy("1.0.0-aaaaaaa")
    record = await memory.ended(deployed.id)
    assert record.phase is DeployPhase.UNCHANGED
    assert record.reason is not None
    assert "force=true" in record.reason
    assert memory.phases(deployed.id) == ["queued", "unchanged"]
    assert not any(call.startswith("upgrade") for call in memory.releases.calls)


async def test_a_change_the_policy_flags_is_held_for_approval_then_runs() -> None:
    policy = DeployPolicy.model_validate(
        {"default": {"allow": {"replicaCount": {}}, "requireApproval": ["replicas-changed"]}}
    )
    made = world(policy=policy)
    held = await made.deploy("1.1.0-bbbbbbb", replicaCount=6)
    record = await made.ended(held.id)
    assert record.phase is DeployPhase.PENDING_APPROVAL
    assert record.approvals_needed
    assert "replicas-changed" in record.approvals_needed[0]
    assert not any(call.startswith("upgrade") for call in made.releases.calls)
    await made.orchestrator.approvals.approve(held.id, "ops")
    record = await made.ended(held.id)
    assert record.phase is DeployPhase.SUCCEEDED
    assert record.approved_by == "ops"
    assert made.phases(held.id) == ["queued", "pending_approval", "queued", "started", "succeeded"]


async def test_an_upgrade_succeeds_and_the_next_pass_knows_the_release(memory: World) -> None:
    first = await memory.deploy("1.1.0-bbbbbbb")
    record = await memory.ended(first.id)
    assert record.phase is DeployPhase.SUCCEEDED
    assert record.revision == 2
    assert memory.releases.last("order").values["image"]["tag"] == "1.1.0-bbbbbbb"
    assert memory.phases(first.id) == ["queued", "started", "succeeded"]
    state = memory.store.states[ORDER]
    assert (state.image, state.revision) == (f"{REPOSITORY}:1.1.0-bbbbbbb", 2)
    # What this deployer applied is what helm would say: the next pass does not ask again.
    asked = memory.releases.calls.count("status order")
    second = await memory.deploy("1.2.0-ccccccc")
    assert (await memory.ended(second.id)).phase is DeployPhase.SUCCEEDED
    assert memory.releases.calls.count("status order") == asked


async def test_the_record_says_what_each_step_before_helm_took(memory: World) -> None:
    memory.orchestrator.admission.outcomes.received("run-1.1.0-bbbbbbb")  # as an event arrives
    deployed = await memory.deploy("1.1.0-bbbbbbb")
    record = await memory.ended(deployed.id)
    assert record.phase is DeployPhase.SUCCEEDED
    assert record.helm_started_at is not None
    steps = record.to_helm_ms or {}
    assert list(steps) == [
        "release", "queued", "lane", "observe", "render", "dry-run", "started", "helm"
    ]  # fmt: skip
    assert all(ms >= 0 for ms in steps.values())
    # A deployment that did not arrive as an event here has no arrival to count from.
    second = await memory.deploy("1.2.0-ccccccc")
    assert (await memory.ended(second.id)).to_helm_ms is None


async def test_a_rollout_that_never_gets_ready_ends_rolled_back(memory: World) -> None:
    memory.releases.faults.append("not-ready")
    failed = await memory.deploy("1.1.0-bbbbbbb")
    record = await memory.ended(failed.id)
    assert record.phase is DeployPhase.ROLLED_BACK
    assert record.reason is not None
    assert record.reason.startswith("the rollout failed and was rolled back")
    assert record.helm_stderr is not None
    assert "rollback-on-failure" in record.helm_stderr
    assert memory.releases.last("order").values["image"]["tag"] == "1.0.0-aaaaaaa"
    # The older-image rule keeps comparing with what serves: 1.0.0.
    assert memory.store.states[ORDER].image is None
    retry = await memory.deploy("1.1.0-ddddddd")
    assert (await memory.ended(retry.id)).phase is DeployPhase.SUCCEEDED


async def test_a_transient_error_is_retried_and_one_that_persists_is_final(
    memory: World,
) -> None:
    memory.releases.faults.append(transient())
    once = await memory.deploy("1.1.0-bbbbbbb")
    assert (await memory.ended(once.id)).phase is DeployPhase.SUCCEEDED
    assert memory.releases.calls.count("upgrade order") == 2
    memory.releases.faults.extend(transient() for _ in range(5))
    stuck = await memory.deploy("1.2.0-ccccccc")
    record = await memory.ended(stuck.id)
    assert record.phase is DeployPhase.FAILED
    assert record.reason == "helm kept failing after 5 tries: the API server is slow"
    assert memory.releases.calls.count("upgrade order") == 7


async def test_a_release_left_pending_is_recovered_before_the_upgrade(memory: World) -> None:
    memory.releases.install("order", image_values("1.0.5-eeeeeee"), status="pending-upgrade")
    deployed = await memory.deploy("1.1.0-bbbbbbb")
    record = await memory.ended(deployed.id)
    assert record.phase is DeployPhase.SUCCEEDED
    calls = memory.releases.calls
    assert calls.index("recover order") < calls.index("upgrade order")
    statuses = [revision.status for revision in memory.releases.releases["order"]]
    assert statuses == ["superseded", "failed", "superseded", "deployed"]


async def test_a_drift_correction_waits_behind_the_running_deployment() -> None:
    objects = MemoryObjects()
    made = world(objects=objects, drift=DriftConfig(default=DriftRules(mode=DriftMode.CORRECT)))
    live = objects.live[DEPLOYMENT]
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "by-hand:latest"
    made.releases.gate = gate = asyncio.Event()
    upgrading = asyncio.Event()
    made.releases.on_upgrade = lambda release: upgrading.set()
    check = asyncio.create_task(made.orchestrator.drift.check(ORDER))
    await asyncio.sleep(0)  # the check observes the release while its lane is free
    deployment = await made.deploy("1.1.0-bbbbbbb")
    await asyncio.wait_for(upgrading.wait(), 5)
    await asyncio.sleep(0.05)
    assert not check.done(), "the correction ran beside the deployment"
    assert objects.applied == []
    gate.set()
    report = await asyncio.wait_for(check, 5)
    assert (await made.ended(deployment.id)).phase is DeployPhase.SUCCEEDED
    # The correction looked again after the deployment, which had restored every field.
    assert report.error is None
    assert not report.drifted
    assert objects.applied == []


async def test_a_drift_correction_applies_the_drifted_objects_when_the_lane_is_free() -> None:
    objects = MemoryObjects()
    made = world(objects=objects, drift=DriftConfig(default=DriftRules(mode=DriftMode.CORRECT)))
    live = objects.live[DEPLOYMENT]
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "by-hand:latest"
    report = await made.orchestrator.drift.check(ORDER)
    assert report.drifted
    assert report.corrected
    assert objects.applied == [DEPLOYMENT]
    image = objects.live[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"{REPOSITORY}:1.0.0-aaaaaaa"
    drifted = [event for subject, event in made.events.events if subject.endswith(".drifted")]
    assert len(drifted) == 1


async def test_a_canary_is_aborted_by_a_person_and_the_stable_release_restored() -> None:
    made = world()
    strategy = {"type": "canary", "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
    made.releases.install("order", image_values("1.0.0-aaaaaaa", strategy=strategy))
    deployed = await made.deploy("1.1.0-bbbbbbb", strategy=strategy)
    for _ in range(500):
        stored = made.store.records[deployed.id]
        if stored.canary is not None and stored.canary.state == "paused":
            break
        await asyncio.sleep(0.01)
    assert made.releases.last("order").values["canary"]["replicas"] >= 1
    await made.orchestrator.canaries.command(deployed.id, Command.ABORT, "ops")
    record = await made.ended(deployed.id)
    assert record.phase is DeployPhase.ROLLED_BACK
    assert record.reason == "canary aborted: aborted by ops"
    assert record.canary is not None
    assert record.canary.state == "aborted"
    last = made.releases.last("order")
    assert last.values["image"]["tag"] == "1.0.0-aaaaaaa"
    assert "canary" not in last.values
    assert made.phases(deployed.id) == ["queued", "started", "rolled_back"]
    with pytest.raises(NoCanaryError, match="runs no canary now"):
        await made.orchestrator.canaries.command(deployed.id, Command.ABORT, "ops")


async def test_an_unexpected_error_ends_the_deployment_failed(memory: World) -> None:
    memory.releases.faults.append(RuntimeError("a bug"))
    broken = await memory.deploy("1.1.0-bbbbbbb")
    record = await memory.ended(broken.id)
    assert record.phase is DeployPhase.FAILED
    assert record.reason == "the deployer stopped on an unexpected error: a bug"
