"""The reconciler's decisions as pure functions: what follows a plan, a failure, a drift check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from deploy_contract.events import ArtifactPublished, DeployPhase
from deployer.actions import (
    HoldForApproval,
    Observation,
    SkipUnchanged,
    Upgrade,
    choose_step,
    failure_outcome,
    retry_or_final,
)
from deployer.adapters.helm import HelmFinalError, HelmRetryableError
from deployer.drift import (
    IgnoreRule,
    drifted_fields,
    kept_as_live,
    load_drift_config,
    without_pointer,
)
from deployer.kubeobjects import KubeApiError
from deployer.plan import Plan, plan_objects
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


DEPLOYMENT: dict[str, Any] = {
    "kind": "Deployment",
    "metadata": {"name": "order"},
    "spec": {
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "order", "image": "order:1.0.0-aaaaaaa"}]}},
    },
}


def with_(path: list[Any], value: Any) -> dict[str, Any]:
    import copy

    obj = copy.deepcopy(DEPLOYMENT)
    target = obj
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return obj


def test_drift_names_the_field_and_both_values() -> None:
    live = with_(["spec", "template", "spec", "containers"], [{"name": "order", "image": "x:hand"}])
    [field] = drifted_fields(live, DEPLOYMENT, [])
    assert field.object == "Deployment/order"
    assert field.path == "spec.template.spec.containers[order].image"
    assert (field.before, field.after) == ("x:hand", "order:1.0.0-aaaaaaa")
    assert drifted_fields(DEPLOYMENT, DEPLOYMENT, []) == []


def test_a_deleted_object_is_drift() -> None:
    [field] = drifted_fields(None, DEPLOYMENT, [])
    assert (field.object, field.before, field.after) == ("Deployment/order", None, "present")


def test_ignored_pointers_are_not_drift_and_stay_live_when_corrected() -> None:
    scaled = with_(["spec", "replicas"], 5)
    replicas = IgnoreRule(paths=["/spec/replicas"], kind="Deployment")
    assert drifted_fields(scaled, DEPLOYMENT, [replicas]) == []
    assert drifted_fields(scaled, DEPLOYMENT, [IgnoreRule(paths=["/spec/replicas"], kind="Job")])
    assert kept_as_live(DEPLOYMENT, scaled, [replicas])["spec"]["replicas"] == 5
    assert DEPLOYMENT["spec"]["replicas"] == 2  # pure: the manifest object is not modified


def test_json_pointers_follow_rfc_6901() -> None:
    obj = {"metadata": {"annotations": {"example.com/a": "1", "b": "2"}}, "items": [1, 2, 3]}
    assert without_pointer(obj, "/metadata/annotations/example.com~1a") == {
        "metadata": {"annotations": {"b": "2"}},
        "items": [1, 2, 3],
    }
    assert without_pointer(obj, "/items/1")["items"] == [1, 3]
    assert without_pointer(obj, "/missing/path") == obj
    assert without_pointer(obj, "") == obj


def test_drift_config_is_checked_with_clear_errors() -> None:
    config = load_drift_config(
        '{"default": {"mode": "warn"}, "services": {"order": {"mode": "correct", '
        '"ignore": [{"paths": ["/spec/replicas"]}]}}}'
    )
    assert config.rules("order").mode == "correct"
    assert config.rules("payment").mode == "warn"
    assert load_drift_config(None).rules("x").mode == "warn"
    with pytest.raises(ValueError, match="not a JSON pointer"):
        load_drift_config('{"default": {"ignore": [{"paths": ["spec.replicas"]}]}}')
    with pytest.raises(ValueError, match=r"default\.mode"):
        load_drift_config('{"default": {"mode": "sometimes"}}')


def test_list_order_counts_in_a_pod_template() -> None:
    def deployment(env: list[str]) -> dict[str, Any]:
        container = {"name": "order", "env": [{"name": n, "value": "1"} for n in env]}
        return {"kind": "Deployment", "metadata": {"name": "order"},
                "spec": {"template": {"spec": {"containers": [container]}}}}  # fmt: skip

    key = ("Deployment", "order")
    plan = plan_objects(
        "order", {key: deployment(["A", "B"])}, {key: deployment(["B", "A"])}, installed=True
    )
    [workload] = plan.workloads
    assert workload.change == "rollout"
    assert workload.fields == ["env"]
    [change] = workload.template_changes
    assert (change.path, change.before, change.after) == (
        "containers[order].env(order)",
        "A, B",
        "B, A",
    )
