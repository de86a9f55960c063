"""Observe the release, then pick one small action: the orchestrator acts on what it chose.

Keeping the choice a pure function of (deployment, observation) is what makes a restarted
deployer resume cleanly: it looks at Helm's truth and picks the next step, whatever happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from deploy_contract.events import DeployPhase, PodProblem
from deploy_contract.images import ImageRef, ImageRejectedError, parse_image
from deployer.adapters.helm import PENDING_STATUSES, HelmRetryableError
from deployer.kubeobjects import KubeApiError
from deployer.plan import Plan
from deployer.podproblems import describe
from deployer.records import DeploymentRecord

MAX_ATTEMPTS = 5

DESCRIPTION_MARK = "flotilla-deployment="


def description_for(record: DeploymentRecord) -> str:
    """The Helm release description: names the deployment, the pipeline and the commit."""
    parts = [f"{DESCRIPTION_MARK}{record.id}"]
    if record.request is not None:
        parts += [f"pipeline={record.request.pipeline_id}", f"commit={record.request.commit}"]
    if record.rollback_to_revision is not None:
        parts.append(f"rollback-to={record.rollback_to_revision}")
    return " ".join(parts)


@dataclass(frozen=True)
class Observation:
    """What Helm says about a release right now."""

    status: str | None  # None: no such release
    revision: int | None = None
    description: str = ""
    image: ImageRef | None = None


@dataclass(frozen=True)
class RecoverPending:
    """A previous operation was interrupted: bring the release out of pending-*."""


@dataclass(frozen=True)
class AlreadyApplied:
    """This deployment already reached Helm (the deployer restarted after it): just report it."""

    revision: int


@dataclass(frozen=True)
class RejectOlder:
    """The image is older than the deployed one and the request is not a rollback."""

    reason: str


@dataclass(frozen=True)
class Apply:
    """Plan, then ``helm upgrade --install`` (or ``helm rollback`` for a rollback by revision)."""


Action = RecoverPending | AlreadyApplied | RejectOlder | Apply


def choose_action(record: DeploymentRecord, observed: Observation) -> Action:
    """The next step for ``record`` given the release as observed."""
    if observed.status in PENDING_STATUSES:
        return RecoverPending()
    marked = f"{DESCRIPTION_MARK}{record.id}" in observed.description.split()
    if marked and observed.status == "deployed" and observed.revision is not None:
        return AlreadyApplied(observed.revision)
    request = record.request
    if request is not None and not request.rollback and observed.image is not None:
        try:
            wanted = parse_image(request.image)
        except ImageRejectedError as exc:  # validated at intake; kept for resumed records
            return RejectOlder(str(exc))
        if (refusal := wanted.refused_over(observed.image)) is not None:
            return RejectOlder(refusal)
    return Apply()


# ---- after the plan -----------------------------------------------------------------------


@dataclass(frozen=True)
class SkipUnchanged:
    """The plan changes nothing: no helm upgrade, no revision; the deployment ends unchanged."""

    reason: str


@dataclass(frozen=True)
class HoldForApproval:
    """The plan holds changes the policy wants a person to approve (helm has not run)."""

    needed: tuple[str, ...]


@dataclass(frozen=True)
class Upgrade:
    """Run ``helm upgrade --install`` with the planned values."""


Step = SkipUnchanged | HoldForApproval | Upgrade


def choose_step(record: DeploymentRecord, plan: Plan, needed: list[str]) -> Step:
    """What to do with a planned deployment; ``needed`` are the approvals its plan requires."""
    forced = record.request is not None and record.request.force
    if plan.action == "no-op" and not forced:
        return SkipUnchanged(
            "the plan changes nothing in the release: no helm upgrade ran and no revision was "
            "added (send force=true to upgrade anyway)"
        )
    if needed and record.approved_by is None:
        return HoldForApproval(tuple(needed))
    return Upgrade()


# ---- after a failure ------------------------------------------------------------------------


def retry_or_final(error: Exception, attempt: int) -> Literal["retry", "final"]:
    """The one place that decides whether a failed step is tried again (up to MAX_ATTEMPTS)."""
    transient = isinstance(error, HelmRetryableError) or (
        isinstance(error, KubeApiError) and error.retryable
    )
    return "retry" if transient and attempt < MAX_ATTEMPTS else "final"


@dataclass(frozen=True)
class Outcome:
    """How a deployment ends: its one terminal phase, the reason, the release revision."""

    phase: DeployPhase
    reason: str | None = None
    revision: int | None = None
    helm_stderr: str | None = None
    pod_problems: tuple[PodProblem, ...] = ()


def with_pod_problems(outcome: Outcome, problems: Sequence[PodProblem]) -> Outcome:
    """A failed outcome whose reason also says what the new pods did (OOMKilled, ...)."""
    reason = f"{outcome.reason}; the new pods: {describe(problems)}"
    return replace(outcome, reason=reason, pod_problems=tuple(problems))


def failure_outcome(
    before: Observation | None, after: Observation, error: str, helm_stderr: str | None = None
) -> Outcome:
    """A failed upgrade ends ``rolled_back`` when Helm restored an earlier revision (a new,
    deployed revision above the one before), else ``failed``."""
    if (
        before is not None
        and before.revision is not None
        and after.status == "deployed"
        and after.revision is not None
        and after.revision > before.revision
    ):
        return Outcome(
            DeployPhase.ROLLED_BACK,
            f"the rollout failed and was rolled back to the previous release "
            f"(now revision {after.revision}): {error}",
            after.revision,
            helm_stderr,
        )
    return Outcome(DeployPhase.FAILED, error, helm_stderr=helm_stderr)
