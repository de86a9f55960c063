"""Deploy policy: which chart values a pipeline event or an API caller may set, within which bounds,
and which planned changes need a person's approval.

The policy is part of the deployer's configuration (``DEPLOYER_POLICY`` as JSON, or
``DEPLOYER_POLICY_FILE`` as YAML; the deployer chart's ``policy`` value). Without one, the
default holds: a deployment may set its image and nothing else.

Rules are looked up most specific first, and the first match is used whole (entries do not
merge): ``services.<service>.environments.<environment>``, ``services.<service>``,
``environments.<environment>``, then ``default``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deployer.configtext import ConfigTextError, load_config_text
from deployer.intake.valuepaths import ValuePath, leaves, shown
from deployer.plan import Attention, Plan, parse_quantity

Scalar = int | float | str | bool


class Bound(BaseModel):
    """What a value under an allowed path may be; an empty bound allows anything the schema does.

    ``min`` and ``max`` compare numbers, or Kubernetes quantities by value (``max: 1Gi`` allows
    ``512Mi``); ``oneOf`` lists the values allowed.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    minimum: int | float | str | None = Field(default=None, alias="min")
    maximum: int | float | str | None = Field(default=None, alias="max")
    one_of: list[Scalar] | None = Field(default=None, alias="oneOf", min_length=1)

    @model_validator(mode="after")
    def _bounds_are_numbers_or_quantities(self) -> Bound:
        for name, bound in (("min", self.minimum), ("max", self.maximum)):
            if bound is not None and _number(bound) is None:
                raise ValueError(f"{name}: {bound!r} is neither a number nor a quantity")
        return self

    def violation(self, value: Any) -> str | None:
        """Why ``value`` is out of this bound, or None when it is within."""
        if self.one_of is not None and value not in self.one_of:
            return f"is not one of {', '.join(shown(v) for v in self.one_of)}"
        if self.minimum is None and self.maximum is None:
            return None
        number = _number(value)
        if number is None:
            return "is not a number or quantity, but the policy bounds it"
        if self.minimum is not None and number < _checked_number(self.minimum):
            return f"is below the minimum {shown(self.minimum)}"
        if self.maximum is not None and number > _checked_number(self.maximum):
            return f"is above the maximum {shown(self.maximum)}"
        return None


class Rules(BaseModel):
    """One policy entry: the value paths a deployment may set and what needs approval."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    allow: dict[str, Bound] = Field(
        default_factory=dict,
        description="Dotted value path -> bound; a path allows everything under it.",
    )
    require_approval: list[Attention] = Field(
        default_factory=list,
        alias="requireApproval",
        description="Planned changes that wait in pending_approval until a person approves.",
    )
    replicas_factor: float = Field(
        default=2.0, gt=1, alias="replicasFactor",
        description="replicas-changed needs approval when replicas change by more than this.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _paths_are_dotted_names(self) -> Rules:
        for path in self.allow:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"allow: {path!r} is not a dotted path like resources.limits")
            if path == "image" or path.startswith("image."):
                raise ValueError("allow: the image is always allowed; do not list it")
        return self

    def bound_for(self, path: ValuePath) -> Bound | None:
        """The bound of the most specific allowed path at or above ``path``; None: not allowed."""
        dotted = path.dotted()
        best: tuple[int, Bound] | None = None
        for allowed, bound in self.allow.items():
            covers = dotted == allowed or dotted.startswith(allowed + ".")
            if covers and (best is None or len(allowed) > best[0]):
                best = (len(allowed), bound)
        return best[1] if best else None


class ServicePolicy(Rules):
    """A service's rules, with environment-specific ones that replace them."""

    environments: dict[str, Rules] = Field(default_factory=dict)


class DeployPolicy(BaseModel):
    """The whole policy: defaults, per environment, per service (and environment)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    shared_secrets: list[str] = Field(
        default_factory=list,
        alias="sharedSecrets",
        description="Secrets any release may reference besides its own (<service>, <service>-*).",
    )
    default: Rules = Field(default_factory=Rules)
    environments: dict[str, Rules] = Field(default_factory=dict)
    services: dict[str, ServicePolicy] = Field(default_factory=dict)

    def rules(self, service: str, environment: str) -> Rules:
        """The rules that hold for ``service`` in ``environment`` (the most specific entry)."""
        entry = self.services.get(service)
        if entry is not None:
            return entry.environments.get(environment) or entry
        return self.environments.get(environment) or self.default


class PolicyError(ConfigTextError):
    """The deployer's policy configuration is malformed; the message says where."""


def load_policy(text: str | None, file: Path | None) -> DeployPolicy:
    """The policy from ``DEPLOYER_POLICY`` (JSON or YAML text) or ``DEPLOYER_POLICY_FILE``."""
    loaded = load_config_text(
        DeployPolicy, text, file, variable="DEPLOYER_POLICY", what="the deploy policy",
        root="policy", error=PolicyError,
    )  # fmt: skip
    return loaded or DeployPolicy()


def policy_violations(values: dict[str, Any], rules: Rules) -> Iterator[str]:
    """Each value a deployment sets that the rules do not allow, or allow only within bounds."""
    for path, value in leaves(values):
        bound = rules.bound_for(path)
        if bound is None:
            yield (
                f"values.{path}: the deploy policy does not let a deployment set this path "
                f"(allowed: {', '.join(sorted(rules.allow)) or 'the image only'})"
            )
            continue
        problem = bound.violation(value)
        if problem is not None:
            yield f"values.{path}: {shown(value)} {problem} (deploy policy)"


def approvals_needed(plan: Plan, rules: Rules) -> list[str]:
    """The planned changes that the rules hold for a person's approval (empty: none)."""
    needed = []
    for notice in plan.notices:
        if notice.kind not in rules.require_approval:
            continue
        if notice.kind is Attention.REPLICAS_CHANGED and (notice.factor or 1) <= (
            rules.replicas_factor
        ):
            continue
        needed.append(f"{notice.kind.value}: {notice.workload} {notice.detail}")
    return needed


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    return parse_quantity(value) if isinstance(value, str) else None


def _checked_number(value: object) -> Decimal:
    number = _number(value)
    assert number is not None  # checked when the policy was loaded
    return number
