"""Observe the release, then pick one small action: the orchestrator acts on what it chose.

Keeping the choice a pure function of (deployment, observation) is what makes a restarted
deployer resume cleanly: it looks at Helm's truth and picks the next step, whatever happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.images import ImageRef, ImageRejectedError, parse_image
from deployer.records import DeploymentRecord

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
    if observed.status is not None and observed.status.startswith("pending"):
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
        if wanted.is_older_than(observed.image):
            return RejectOlder(
                f"image {wanted.tag} is older than the deployed {observed.image.tag}; "
                "send rollback=true to deploy an older version on purpose"
            )
    return Apply()
