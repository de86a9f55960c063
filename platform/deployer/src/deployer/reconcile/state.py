"""The values the reconcile loop passes around: what a release looks like (an observation) and
how a deployment ends (an outcome). Plain data, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from deploy_contract.events import DeployPhase, PodProblem
from deploy_contract.images import ImageRef
from deployer.reconcile.podproblems import describe


@dataclass(frozen=True)
class Observation:
    """A release as observed once per pass: Helm's status and its recorded manifest."""

    status: str | None  # None: no such release
    revision: int | None = None
    description: str = ""
    image: ImageRef | None = None
    pending: bool = False  # pending-install/-upgrade/-rollback: an operation was cut short
    manifest: str | None = None  # the manifest of the deployed revision


@dataclass(frozen=True)
class Outcome:
    """How a deployment ends: its one terminal phase, the reason, the release revision."""

    phase: DeployPhase
    reason: str | None = None
    revision: int | None = None
    helm_stderr: str | None = None
    pod_problems: tuple[PodProblem, ...] = ()
    image: str | None = None  # what serves now, when the deployment did not name it (rollbacks)
    superseded_by: str | None = None  # the newer deployment that cut a canary short


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
