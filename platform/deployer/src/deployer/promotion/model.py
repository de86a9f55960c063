"""What the deployer remembers of promotions: each one with its gates, and the holds a rollback
leaves on an environment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from deploy_contract.promotions import GateResult, PromotionEventData, PromotionState
from deployer.promotion.releases import Release
from deployer.targets import Target


class Approval(BaseModel):
    """A person's yes to a promotion; ``override_freeze`` lets it through a freeze too (which
    needs a reason)."""

    by: str
    reason: str = ""
    override_freeze: bool = False
    at: AwareDatetime


class Promotion(BaseModel):
    """A release entering ``environment`` from ``source``; ``automatic`` when the deployer
    started it (a hold stops those), else a person asked for it."""

    id: str
    release: Release
    source: str
    environment: str
    automatic: bool
    requested_by: str | None = None
    state: PromotionState = PromotionState.WAITING
    reason: str = "waiting for its gates"
    gates: list[GateResult] = Field(default_factory=list)
    approval: Approval | None = None
    analysis: GateResult | None = Field(
        default=None, description="The analysis' last conclusive result (measured once)"
    )
    upstream_deployment_id: str = Field(description="The deployment that verified it upstream")
    verified_at: AwareDatetime = Field(description="When it succeeded upstream")
    deployment_id: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @staticmethod
    def id_of(release_id: str, environment: str) -> str:
        """A release enters an environment once: the promotion's id says which and where."""
        return f"{release_id}.{environment}"

    @property
    def service(self) -> str:
        """The service promoted."""
        return self.release.service

    @property
    def target(self) -> Target:
        """The release the promotion changes."""
        return Target(self.environment, self.release.service)

    def moved(self, now: datetime, **changes: Any) -> Promotion:
        """A copy with ``changes``, updated ``now``."""
        return self.model_copy(update={**changes, "updated_at": now})

    def event(self) -> PromotionEventData:
        """The promotion as its events tell it."""
        return PromotionEventData(
            promotion_id=self.id,
            release_id=self.release.id,
            service=self.service,
            source=self.source,
            environment=self.environment,
            image=self.release.image,
            commit=self.release.commit,
            state=self.state,
            reason=self.reason,
            gates=self.gates,
            deployment_id=self.deployment_id,
            created_at=self.created_at,
        )


class Hold(BaseModel):
    """Automatic promotion of ``service`` into ``environment`` stops until someone clears it:
    a rollback there must not be undone by automation."""

    environment: str
    service: str
    reason: str
    deployment_id: str | None = Field(default=None, description="The rollback that set it")
    since: AwareDatetime
    by: str = Field(default="deployer", description="Who set it")

    @property
    def target(self) -> Target:
        """Where it holds."""
        return Target(self.environment, self.service)
