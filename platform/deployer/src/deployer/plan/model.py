"""The plan of a deployment as the deployer, its API and its CLI show it."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from deploy_contract.changes import FieldChange
from deployer.plan.summary import describe

WorkloadChange = Literal[
    "install",
    "rollout",
    "scale-only",
    "workload-only",
    "config-only",
    "service-only",
    "no-op",
    "delete",
]


class WorkloadPlan(BaseModel):
    """What happens to one workload and its pods."""

    kind: str
    name: str
    change: WorkloadChange
    fields: list[str] = Field(
        default_factory=list, description="What changed in the pod template (rolls the pods)."
    )
    template_changes: list[FieldChange] = Field(default_factory=list)
    spec_changes: list[FieldChange] = Field(
        default_factory=list, description="Changes outside the pod template (replicas, strategy)."
    )
    config_changes: list[str] = Field(
        default_factory=list, description="Changed ConfigMaps/Secrets the pods read, kind/name."
    )
    images: dict[str, str] = Field(default_factory=dict, description="container -> new image")


class Attention(StrEnum):
    """Kinds of planned change that may need a person (the policy can require approval)."""

    LIMIT_LOWERED = "limit-lowered"  # a container's CPU or memory limit lowered
    REPLICAS_CHANGED = "replicas-changed"  # .spec.replicas changed (by ``factor``)
    SECRET_ADDED = "secret-added"  # noqa: S105 - the pods read a Secret they did not read before


class Notice(BaseModel):
    """One change of a kind that may need a person."""

    kind: Attention
    workload: str = Field(examples=["Deployment/order"])
    detail: str = Field(examples=["container order: memory limit 256Mi -> 64Mi"])
    factor: float | None = Field(default=None, description="replicas-changed: new/old or old/new")


class ResourceChange(BaseModel):
    """A change of a resource that is not a workload; ``fields`` are paths, without values."""

    kind: str
    name: str
    change: Literal["added", "removed", "changed"]
    fields: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    """What deploying the new manifests changes, per workload and per other resource."""

    service: str
    action: Literal["install", "upgrade", "no-op"]
    workloads: list[WorkloadPlan] = Field(default_factory=list)
    resources: list[ResourceChange] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    notices: list[Notice] = Field(
        default_factory=list, description="Changes that may need a person (see Attention)."
    )

    def summary(self) -> str:
        """One line for humans, e.g. ``order: rollout (image 1.0.0-a1b2c3d -> 1.1.0-b2c3d4e)``."""
        prefix = len(self.workloads) > 1
        parts = [
            f"{w.kind}/{w.name} " * prefix + describe(w, self.resources) for w in self.workloads
        ]
        if not parts:
            parts = [f"{self.action} ({len(self.resources)} resources changed)"]
        line = f"{self.service}: {', '.join(parts)}"
        if self.warnings:
            count = len(self.warnings)
            line += f"; {count} warning{'s' if count > 1 else ''}"
        return line
