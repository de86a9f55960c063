"""The reconciler's decisions as pure functions: what follows a plan, and a failure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from deploy_contract.events import ArtifactPublished, DeployPhase
from deployer.adapters.helm import HelmFinalError, HelmRetryableError
from deployer.adapters.kubeobjects import KubeApiError
from deployer.plan import Plan
from deployer.reconcile.decide import (
    Action,
    HoldForApproval,
    Planned,
    SkipUnchanged,
    Upgrade,
    decide,
    retry_or_final,
)
from deployer.reconcile.state import Observation, failure_outcome
from deployer.records import DeploymentRecord


def record(*, force: bool = False, approved_by: str | None = None) -> DeploymentRecord:
    request = ArtifactPublished(
        service="order", image="order:1.1.0-bbbbbbb", commit="bbbbbbb", pipeline_id="r", force=force
    )
    return DeploymentRecord(
        id="r-order",
        service="order",
        request=request,
        phase=DeployPhase.QUEUED,
        received_at=datetime.now(UTC),
        approved_by=approved_by,
    )


def choose_step(record: DeploymentRecord, plan: Plan, needed: list[str]) -> Action:
    """The decision once the plan of a first install is made."""
    return decide(record, Observation(status=None), Planned(plan, tuple(needed)))


NO_OP = Plan(service="order", action="no-op")
UPGRADE = Plan(service="order", action="upgrade")


def test_a_no_op_plan_is_skipped_unless_forced() -> None:
    step = choose_step(record(), NO_OP, [])
    assert isinstance(step, SkipUnchanged)
    assert "force=true" in step.reason
    assert choose_step(record(force=True), NO_OP, []) == Upgrade()
    assert choose_step(record(), UPGRADE, []) == Upgrade()


def test_approvals_hold_an_upgrade_until_approved_but_never_a_no_op() -> None:
    needed = ["replicas-changed: Deployment/order replicas 1 -> 3 (x3)"]
    assert choose_step(record(), UPGRADE, needed) == HoldForApproval(tuple(needed))
    assert choose_step(record(approved_by="ops"), UPGRADE, needed) == Upgrade()
    assert isinstance(choose_step(record(), NO_OP, needed), SkipUnchanged)


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
