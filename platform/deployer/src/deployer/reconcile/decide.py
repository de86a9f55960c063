"""Decide: the next action for a deployment, a pure function of what was observed.

Keeping the choice a pure function of (deployment, observation, plan) is what makes a restarted
deployer resume cleanly: it looks at Helm's truth and picks the next step, whatever happened.
One switch (:func:`decide`) picks the action; :func:`retry_or_final` is the one place that says
whether a failed step is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deploy_contract.events import DeployPhase
from deploy_contract.images import ImageRejectedError
from deployer.canary.strategy import CanaryStrategy
from deployer.plan import Plan
from deployer.reconcile.errors import StepError
from deployer.reconcile.state import Observation
from deployer.records import DeploymentRecord

MAX_ATTEMPTS = 5
DESCRIPTION_MARK = "flotilla-deployment="
NO_OP_REASON = (
    "the plan changes nothing in the release: no helm upgrade ran and no revision was added "
    "(send force=true to upgrade anyway)"
)


def description_for(record: DeploymentRecord) -> str:
    """The Helm release description: names the deployment, the pipeline and the commit."""
    parts = [f"{DESCRIPTION_MARK}{record.id}"]
    if record.request is not None:
        parts += [f"pipeline={record.request.pipeline_id}", f"commit={record.request.commit}"]
    if record.rollback_to_revision is not None:
        parts.append(f"rollback-to={record.rollback_to_revision}")
    return " ".join(parts)


def marks_for(record: DeploymentRecord) -> dict[str, str]:
    """What names ``record``'s change where it is written down (a gitops commit's trailers)."""
    marks = {
        "Flotilla-Deployment": record.id,
        "Flotilla-Environment": record.environment,
        "Flotilla-Service": record.service,
        "Flotilla-Release": record.release_id or "",
    }
    if record.request is not None:
        marks["Flotilla-Pipeline-Run"] = record.request.pipeline_id
        marks["Flotilla-Commit"] = record.request.commit
        marks["Flotilla-Image"] = record.request.image
    return {key: value for key, value in marks.items() if value}


@dataclass(frozen=True)
class Planned:
    """What the plan of a deployment found: the plan, the approvals the policy wants for it, and
    the canary to run (None: a rolling update)."""

    plan: Plan
    needed: tuple[str, ...] = ()
    canary: CanaryStrategy | None = None


@dataclass(frozen=True)
class RecoverPending:
    """A previous operation was interrupted: bring the release out of pending-*."""


@dataclass(frozen=True)
class AlreadyApplied:
    """This deployment already reached Helm (the deployer restarted after it): just report it."""

    revision: int


@dataclass(frozen=True)
class Conclude:
    """The deployment ends here and the release is not touched: ``rejected`` (an image older than
    the deployed one, and the request is not a rollback) or ``unchanged`` (the plan changes
    nothing: no helm upgrade, no revision)."""

    phase: Literal[DeployPhase.REJECTED, DeployPhase.UNCHANGED]
    reason: str


@dataclass(frozen=True)
class RollBack:
    """``helm rollback`` to a revision (0: the previous one)."""

    revision: int


@dataclass(frozen=True)
class MakePlan:
    """Render the new values and ask the API server what they change, then decide again."""


@dataclass(frozen=True)
class HoldForApproval:
    """The plan holds changes the policy wants a person to approve (helm has not run)."""

    needed: tuple[str, ...]


@dataclass(frozen=True)
class Upgrade:
    """Run ``helm upgrade --install`` with the planned values (a rolling update)."""


@dataclass(frozen=True)
class RunCanary:
    """Move the release to the new image through the service's canary steps."""

    strategy: CanaryStrategy


Action = (
    RecoverPending
    | AlreadyApplied
    | Conclude
    | RollBack
    | MakePlan
    | HoldForApproval
    | Upgrade
    | RunCanary
)


def decide(record: DeploymentRecord, observed: Observation, planned: Planned | None) -> Action:
    """The next step for ``record`` given the release as observed and, once made, its plan."""
    if observed.pending:
        return RecoverPending()
    marked = f"{DESCRIPTION_MARK}{record.id}" in observed.description.split()
    if marked and observed.status == "deployed" and observed.revision is not None:
        return AlreadyApplied(observed.revision)
    if record.rollback_to_revision is not None:
        return RollBack(record.rollback_to_revision)
    request = record.request
    if request is not None:
        try:
            refusal = request.refusal_over(observed.image)
        except ImageRejectedError as exc:  # validated at intake; kept for resumed records
            return Conclude(DeployPhase.REJECTED, str(exc))
        if refusal is not None:
            return Conclude(DeployPhase.REJECTED, refusal)
    if planned is None:
        return MakePlan()
    if planned.plan.action == "no-op" and not (request is not None and request.force):
        return Conclude(DeployPhase.UNCHANGED, NO_OP_REASON)
    if planned.needed and record.approved_by is None:
        return HoldForApproval(planned.needed)
    if planned.canary is not None:
        return RunCanary(planned.canary)
    return Upgrade()


def retry_or_final(error: Exception, attempt: int) -> Literal["retry", "final"]:
    """The one place that decides whether a failed step is tried again (up to MAX_ATTEMPTS):
    only a transient StepError is; anything else (a bug) is final at once."""
    transient = isinstance(error, StepError) and error.retryable
    return "retry" if transient and attempt < MAX_ATTEMPTS else "final"


def kept_failing(error: StepError, attempts: int) -> str:
    """The reason of a step that failed ``attempts`` times, the last time with ``error``."""
    return f"{error.system} kept failing after {attempts} tries: {error}"


def gave_up_reason(error: StepError, attempts: int) -> str:
    """Why a deployment failed on an error that kept coming back, that the API server gave for
    refusing the planned manifests, or that another system gave (it says what to do)."""
    if error.retryable:
        return kept_failing(error, attempts)
    if error.system != "the Kubernetes API":
        return str(error)
    return (
        f"the API server refused the planned manifests (fix the chart or values and deploy "
        f"again): {error}"
    )
