"""Drift rules per service: the mode and the JSON pointers to ignore (DEPLOYER_DRIFT)."""

from __future__ import annotations

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from deploy_contract.drift import DriftMode
from kit.validation import validation_problems


class IgnoreRule(BaseModel):
    """JSON pointers (RFC 6901) left out of drift, on the objects of ``kind`` (and ``name``)."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1, examples=[["/spec/replicas"]])
    kind: str | None = Field(default=None, examples=["Deployment"])
    name: str | None = None

    @field_validator("paths")
    @classmethod
    def _pointers(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not a JSON pointer: start it with '/'")
        return paths

    def applies_to(self, kind: str, name: str) -> bool:
        """True when the rule covers the object ``kind``/``name``."""
        return self.kind in (None, kind) and self.name in (None, name)


class DriftRules(BaseModel):
    """A service's drift mode and ignore rules."""

    model_config = ConfigDict(extra="forbid")

    mode: DriftMode = DriftMode.WARN
    ignore: list[IgnoreRule] = Field(default_factory=list)


class DriftConfig(BaseModel):
    """Drift rules: ``default`` for every service, ``services`` per service (used whole)."""

    model_config = ConfigDict(extra="forbid")

    default: DriftRules = Field(default_factory=DriftRules)
    services: dict[str, DriftRules] = Field(default_factory=dict)

    def rules(self, service: str) -> DriftRules:
        """The rules of ``service``."""
        return self.services.get(service, self.default)


def load_drift_config(text: str | None) -> DriftConfig:
    """The drift rules from JSON or YAML text (DEPLOYER_DRIFT); None: warn on everything."""
    if not text:
        return DriftConfig()
    try:
        return DriftConfig.model_validate(yaml.safe_load(text) or {})
    except yaml.YAMLError as exc:
        raise ValueError(f"DEPLOYER_DRIFT is not JSON or YAML: {exc}") from None
    except ValidationError as exc:
        problems = validation_problems(exc, "drift")
        raise ValueError(f"DEPLOYER_DRIFT is invalid: {problems}") from None
