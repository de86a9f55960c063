from datetime import UTC, datetime

from deploy_contract.events import ArtifactPublished, DeployPhase
from deploy_contract.images import parse_image
from deployer.reconcile.decide import (
    AlreadyApplied,
    MakePlan,
    RecoverPending,
    RejectOlder,
    RollBack,
    decide,
    description_for,
)
from deployer.reconcile.state import Observation
from deployer.records import DeploymentRecord


def record(image: str = "order:1.1.0-bbbbbbb", rollback: bool = False) -> DeploymentRecord:
    request = ArtifactPublished(
        service="order", image=image, commit="bbbbbbb", pipeline_id="run-7", rollback=rollback
    )
    return DeploymentRecord(
        id="run-7-order",
        service="order",
        request=request,
        phase=DeployPhase.QUEUED,
        received_at=datetime.now(UTC),
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
    assert isinstance(action, RejectOlder)
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
