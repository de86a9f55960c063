"""What the deployer remembers about each deployment and each service."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from deploy_contract.events import ArtifactPublished, CanaryStatus, DeployPhase, PodProblem
from deployer.targets import Target


class Origin(StrEnum):
    """Who asked for a deployment."""

    PIPELINE = "pipeline"
    API = "api"
    PROMOTION = "promotion"


class PhaseChange(BaseModel):
    """One step of a deployment's life."""

    phase: DeployPhase
    at: datetime
    reason: str | None = None


class DeploymentRecord(BaseModel):
    """A deployment from the moment it is accepted (queued) or rejected to its outcome."""

    id: str
    service: str
    environment: str = Field(
        default="", description="Where it deploys; empty in records written before environments"
    )
    origin: Origin = Origin.PIPELINE
    release_id: str | None = Field(default=None, description="The release it deploys")
    promotion_id: str | None = Field(default=None, description="The promotion that started it")
    request: ArtifactPublished | None = None
    rollback_to_revision: int | None = None
    phase: DeployPhase
    reason: str | None = None
    revision: int | None = None
    plan: dict[str, Any] | None = None
    plan_summary: str | None = None
    helm_stderr: str | None = None
    pod_problems: list[PodProblem] = Field(
        default_factory=list, description="Why the new pods of a failed rollout were not ready"
    )
    approvals_needed: list[str] = Field(
        default_factory=list, description="What the policy wants a person to approve"
    )
    approved_by: str | None = Field(default=None, description="The API token that approved it")
    canary: CanaryStatus | None = Field(
        default=None, description="The canary of this deployment, as last reported"
    )
    canary_reports: int = Field(
        default=0, description="How many different canary statuses were reported (as events)"
    )
    superseded_by: str | None = Field(
        default=None, description="The newer deployment that superseded this one"
    )
    traceparent: str | None = None
    received_at: datetime
    started_at: datetime | None = None
    # When helm started (push), or when the commit was pushed (a gitops environment).
    helm_started_at: datetime | None = None
    to_helm_ms: dict[str, float] | None = Field(
        default=None,
        description="Milliseconds each step took from the event's arrival to helm starting, "
        "in order (deployments that arrived as an event in the replica that ran helm)",
    )
    finished_at: datetime | None = None
    history: list[PhaseChange] = Field(default_factory=list)

    def moved_to(self, phase: DeployPhase, reason: str | None = None) -> DeploymentRecord:
        """A copy in ``phase``, with the change appended to its history."""
        now = datetime.now(UTC)
        changes: dict[str, Any] = {
            "phase": phase,
            "reason": reason if reason is not None else self.reason,
            "history": [*self.history, PhaseChange(phase=phase, at=now, reason=reason)],
        }
        if phase is DeployPhase.STARTED and self.started_at is None:
            changes["started_at"] = now
        if phase.terminal:
            changes["finished_at"] = now
        return self.model_copy(update=changes)

    @property
    def target(self) -> Target:
        """The release this deployment changes."""
        return Target(self.environment, self.service)

    @property
    def image(self) -> str | None:
        """The image this deployment rolls out (None for rollbacks by revision)."""
        return self.request.image if self.request else None


class ServiceState(BaseModel):
    """The last outcome per service, for the API and the dashboard."""

    service: str
    environment: str = ""
    image: str | None = None
    revision: int | None = None
    phase: DeployPhase | None = None
    deployment_id: str | None = None
    updated_at: datetime | None = None

    @property
    def target(self) -> Target:
        """The release this state is of."""
        return Target(self.environment, self.service)
