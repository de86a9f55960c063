"""The reconciler's decisions as pure functions: before the plan, once it is made, and after a
failure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from deploy_contract.events import ArtifactPublished, DeployPhase
from deploy_contract.images import parse_image
from deployer.adapters.helm import HelmFinalError, HelmRetryableError
from deployer.adapters.kubeobjects import KubeApiError
from deployer.gitops.errors import FluxError
from deployer.plan import Plan
from deployer.reconcile.decide import (
    NO_OP_REASON,
    Action,
    AlreadyApplied,
    Conclude,
    HoldForApproval,
    MakePlan,
    Planned,
    RecoverPending,
    RollBack,
    Upgrade,
    decide,
    description_for,
    gave_up_reason,
    retry_or_final,
)
from deployer.reconcile.state import Observation, failure_outcome
from deployer.records import DeploymentRecord


def record(
    image: str = "order:1.1.0-bbbbbbb",
    rollback: bool = False,
    *,
    force: bool = False,
    approved_by: str | None = None,
) -> DeploymentRecord:
    request = ArtifactPublished(
        service="order",
        image=image,
        commit="bbbbbbb",
        pipeline_id="run-7",
        rollback=rollback,
        force=force,
    )
    return DeploymentRecord(
        id="run-7-order",
        service="order",
        request=request,
        phase=DeployPhase.QUEUED,
        received_at=datetime.now(UTC),
        approved_by=approved_by,
    )


def deployed(tag: str, description: str = "", status: str = "deployed") -> Observation:
    return Observation(
        status=status,
        revision=3,
        description=description,
        image=parse_image(f"order:{tag}"),
        pending=status.startswith("pending-"),
    )


def choose_action(record: DeploymentRecord, observed: Observation) -> object:
    """The decision before a plan is made."""
    return decide(record, observed, None)


def test_a_new_release_or_a_newer_image_is_applied() -> None:
    assert choose_action(record(), Observation(status=None)) == MakePlan()
    assert choose_action(record(), deployed("1.0.0-aaaaaaa")) == MakePlan()


def test_an_interrupted_operation_is_recovered_first() -> None:
    for status in ("pending-install", "pending-upgrade", "pending-rollback"):
        assert choose_action(record(), deployed("1.0.0-aaaaaaa", status=status)) == (
            RecoverPending()
        )


def test_a_deployment_already_in_helm_is_not_run_again() -> None:
    mine = record()
    observation = deployed("1.1.0-bbbbbbb", description=description_for(mine))
    assert choose_action(mine, observation) == AlreadyApplied(revision=3)


def test_an_older_image_is_rejected_unless_it_is_a_rollback() -> None:
    action = choose_action(record("order:1.0.0-ccccccc"), deployed("1.1.0-aaaaaaa"))
    assert isinstance(action, Conclude)
    assert action.phase is DeployPhase.REJECTED
    assert "older than the deployed 1.1.0-aaaaaaa" in action.reason
    assert "rollback=true" in action.reason
    assert (
        choose_action(record("order:1.0.0-ccccccc", True), deployed("1.1.0-aaaaaaa")) == MakePlan()
    )


def test_the_description_names_deployment_pipeline_and_commit() -> None:
    assert description_for(record()) == (
        "flotilla-deployment=run-7-order pipeline=run-7 commit=bbbbbbb"
    )


def test_a_rollback_by_revision_rolls_back_without_a_plan() -> None:
    rollback = record().model_copy(update={"request": None, "rollback_to_revision": 2})
    assert choose_action(rollback, deployed("1.1.0-aaaaaaa")) == RollBack(2)


# ---- once the plan is made, and after a failure ----------------------------------------------


def choose_step(record: DeploymentRecord, plan: Plan, needed: list[str]) -> Action:
    """The decision once the plan of a first install is made."""
    return decide(record, Observation(status=None), Planned(plan, tuple(needed)))


NO_OP = Plan(service="order", action="no-op")
UPGRADE = Plan(service="order", action="upgrade")


def test_a_no_op_plan_is_skipped_unless_forced() -> None:
    step = choose_step(record(), NO_OP, [])
    assert isinstance(step, Conclude)
    assert step.phase is DeployPhase.UNCHANGED
    assert "force=true" in step.reason
    assert choose_step(record(force=True), NO_OP, []) == Upgrade()
    assert choose_step(record(), UPGRADE, []) == Upgrade()


def test_approvals_hold_an_upgrade_until_approved_but_never_a_no_op() -> None:
    needed = ["replicas-changed: Deployment/order replicas 1 -> 3 (x3)"]
    assert choose_step(record(), UPGRADE, needed) == HoldForApproval(tuple(needed))
    assert choose_step(record(approved_by="ops"), UPGRADE, needed) == Upgrade()
    assert choose_step(record(), NO_OP, needed) == Conclude(DeployPhase.UNCHANGED, NO_OP_REASON)


def error(kind: type[Exception], **more: Any) -> Exception:
    if issubclass(kind, (HelmRetryableError, HelmFinalError)):
        return kind("x", reason="r", command="helm", stderr="")
    return kind("x", **more)


@pytest.mark.parametrize(
    ("failure", "attempt", "decision"),
    [
        (error(HelmRetryableError), 1, "retry"),
        (error(HelmRetryableError), 5, "final"),
        (error(HelmFinalError), 1, "final"),
        (error(KubeApiError, status=0), 1, "retry"),
        (error(KubeApiError, status=503), 4, "retry"),
        (error(KubeApiError, status=429), 1, "retry"),
        (error(KubeApiError, status=422), 1, "final"),
        (error(KubeApiError, status=403), 1, "final"),
        (ValueError("bug"), 1, "final"),
    ],
)
def test_retry_or_final_is_decided_in_one_place(
    failure: Exception, attempt: int, decision: str
) -> None:
    assert retry_or_final(failure, attempt) == decision


def test_a_failure_ends_rolled_back_only_when_an_earlier_revision_was_restored() -> None:
    before = Observation(status="deployed", revision=4)
    restored = failure_outcome(before, Observation(status="deployed", revision=6), "not ready")
    assert restored.phase is DeployPhase.ROLLED_BACK
    assert restored.revision == 6
    assert restored.reason is not None
    assert restored.reason.startswith("the rollout failed and was rolled back")
    assert restored.reason.endswith(": not ready")
    first_install = failure_outcome(None, Observation(status=None), "not ready")
    assert (first_install.phase, first_install.reason) == (DeployPhase.FAILED, "not ready")
    stuck = failure_outcome(before, Observation(status="failed", revision=5), "rollback failed")
    assert stuck.phase is DeployPhase.FAILED


def test_a_final_error_says_what_failed_and_only_the_api_server_blames_the_manifests() -> None:
    refused = gave_up_reason(KubeApiError("Deployment/order: invalid", status=422), 1)
    assert refused.startswith("the API server refused the planned manifests")
    flux = FluxError("Flux cannot fetch http://git/p.git (GitOperationFailed: 401)")
    assert gave_up_reason(flux, 1) == str(flux)
    waiting = FluxError("still pending", retryable=True)
    assert gave_up_reason(waiting, 5) == "Flux kept failing after 5 tries: still pending"
