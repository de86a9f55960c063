"""Promotion events: a release moving from one environment into the next through its gates.

Published on ``deploy.<service>.promotion`` (type ``dev.flotilla.deploy.promotion.v1``) each time
a promotion's state or one of its gates changes. The deployment that a promotion starts reports
its own ``deploy.<service>.<phase>`` events, with the environment it deploys to.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from deploy_contract.events import DEPLOY_SUBJECT_PREFIX

PROMOTION_TYPE = "dev.flotilla.deploy.promotion.v1"


def promotion_subject(service: str) -> str:
    """The subject of a service's promotion events."""
    return f"{DEPLOY_SUBJECT_PREFIX}{service}.promotion"


class Gate(StrEnum):
    """The gates of a promotion, in the order they are passed (``hold`` only stops automatic
    promotions)."""

    HOLD = "hold"
    VERIFIED = "verified"
    SOAK = "soak"
    ANALYSIS = "analysis"
    FREEZE = "freeze"
    APPROVAL = "approval"


class GateVerdict(StrEnum):
    """Where a gate stands."""

    PASSED = "passed"
    WAITING = "waiting"
    FAILED = "failed"
    NOT_REACHED = "not_reached"


class GateResult(BaseModel):
    """One gate's decision, with its evidence."""

    gate: Gate
    verdict: GateVerdict
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    decided_at: datetime


class PromotionState(StrEnum):
    """Where a promotion is: ``waiting`` at a gate, ``promoting`` (its deployment runs), then one
    of the last four."""

    WAITING = "waiting"
    PROMOTING = "promoting"
    PROMOTED = "promoted"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True once nothing more happens to the promotion."""
        return self not in (PromotionState.WAITING, PromotionState.PROMOTING)


class PromotionEventData(BaseModel):
    """The data of every ``deploy.<service>.promotion`` event."""

    promotion_id: str
    release_id: str
    service: str
    source: str = Field(description="The upstream environment the release comes from")
    environment: str = Field(description="The environment it enters")
    image: str
    commit: str
    state: PromotionState
    reason: str
    gates: list[GateResult]
    deployment_id: str | None = Field(
        default=None, description="The deployment that brings the release in, once started"
    )
    created_at: datetime | None = Field(
        default=None,
        description="When the promotion was asked for (a promotion asked for again after it "
        "ended is a new one, with the same promotion_id)",
    )
