"""The environments a deployer serves, in promotion order, and each one's promotion rules.

Configured with ``DEPLOYER_ENVIRONMENTS`` (YAML or JSON text) or ``DEPLOYER_ENVIRONMENTS_FILE``
(the deployer chart's ``environments`` value)::

    environments:
      - name: dev
        namespace: flotilla-dev
      - name: staging
        namespace: flotilla-staging
        upstream: dev
        promotion: {soakSeconds: 60, analysis: {minSuccessRate: 0.99, maxP99Seconds: 0.5}}
      - name: prod
        namespace: flotilla-prod          # or another cluster: kubeContext: prod-eu
        upstream: staging
        promotion: {soakSeconds: 600, approval: true, freeze: [...]}

Exactly one environment has no upstream: CI's releases enter there. Every other one names the
environment its releases come from; the chain may branch (two environments after one) but never
loops. Without the setting a deployer serves one environment, named after the deployer's own
(``development``, ``production``), in ``DEPLOYER_NAMESPACES``' first namespace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deployer.configtext import ConfigTextError, load_config_text
from deployer.gitops.config import GitOpsSpec
from deployer.intake.checks import RejectedError
from deployer.promotion.freeze import FreezeCalendar, FreezeWindow

ENVIRONMENT_NAME = r"^[a-z][a-z0-9-]{0,39}$"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class AnalysisRules(_Config):
    """What the upstream's metrics must show over its soak (the canary's thresholds, judged on
    the upstream's pods alone). No traffic is inconclusive, never a pass."""

    min_success_rate: float = Field(default=0.99, ge=0, le=1, alias="minSuccessRate")
    max_p99_seconds: float = Field(default=0.5, gt=0, alias="maxP99Seconds")
    min_requests: int = Field(default=10, ge=1, alias="minRequests")
    max_handler_failures: int = Field(default=0, ge=0, alias="maxHandlerFailures")
    max_dead_letters: int = Field(default=0, ge=0, alias="maxDeadLetters")


class PromotionRules(_Config):
    """How releases come into an environment from its upstream."""

    automatic: bool = Field(
        default=True,
        description="Promote once every gate passes; false: only when someone asks (the API)",
    )
    soak_seconds: float = Field(
        default=0,
        ge=0,
        alias="soakSeconds",
        description="How long the release must have run verified upstream",
    )
    analysis: AnalysisRules | None = Field(
        default=None, description="The metric analysis over the upstream soak; none: no analysis"
    )
    freeze: list[FreezeWindow] = Field(
        default_factory=list, description="When nothing may enter the environment"
    )
    approval: bool = Field(default=False, description="Whether a person must approve each entry")

    @model_validator(mode="after")
    def _one_calendar(self) -> PromotionRules:
        FreezeCalendar(windows=self.freeze)  # refuses two windows of one name
        return self

    @property
    def calendar(self) -> FreezeCalendar:
        """The freeze windows as a calendar."""
        return FreezeCalendar(windows=self.freeze)


class EnvironmentSpec(_Config):
    """One environment: where it deploys, its values, where its releases come from."""

    name: str = Field(pattern=ENVIRONMENT_NAME)
    namespace: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    kube_context: str | None = Field(
        default=None,
        alias="kubeContext",
        description="The kubeconfig context of the environment's cluster; none: the deployer's",
    )
    values_dir: Path | None = Field(
        default=None, alias="valuesDir", description="<service>.yaml values of this environment"
    )
    upstream: str | None = Field(default=None, description="Where its releases come from")
    services: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The services it runs (releases of others are not promoted into it); "
        "none: every service",
    )
    promotion: PromotionRules = Field(default_factory=PromotionRules)
    mode: Literal["push", "gitops"] = Field(
        default="push",
        description="push: the deployer runs helm; gitops: it commits the desired state to git "
        "and Flux applies it",
    )
    gitops: GitOpsSpec | None = Field(
        default=None, description="The repository of a gitops environment"
    )

    @model_validator(mode="after")
    def _gitops_with_its_repository(self) -> EnvironmentSpec:
        if self.mode == "gitops" and self.gitops is None:
            raise ValueError(
                f"{self.name}: mode gitops needs a gitops block naming the repository "
                "(gitops: {repository: https://...})"
            )
        if self.mode == "push" and self.gitops is not None:
            raise ValueError(f"{self.name}: a gitops block needs mode: gitops")
        return self

    def runs(self, service: str) -> bool:
        """Whether ``service`` has a release in this environment."""
        return self.services is None or service in self.services


class Environments(_Config):
    """The environments, in the order given (the entry first is customary, not required)."""

    environments: list[EnvironmentSpec] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _a_bare_list(cls, data: object) -> object:
        return {"environments": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _one_chain(self) -> Environments:
        names = [spec.name for spec in self.environments]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"environment names must be unique: {', '.join(doubled)} repeated")
        entries = [spec.name for spec in self.environments if spec.upstream is None]
        if len(entries) != 1:
            raise ValueError(
                "exactly one environment must have no upstream (where CI's releases enter); "
                f"found {len(entries)}: {', '.join(entries) or 'none'}"
            )
        for spec in self.environments:
            if spec.upstream is not None and spec.upstream not in names:
                raise ValueError(
                    f"{spec.name}: upstream {spec.upstream!r} is not an environment "
                    f"(known: {', '.join(names)})"
                )
            if spec.upstream is None and spec.promotion != PromotionRules():
                raise ValueError(f"{spec.name}: promotion rules need an upstream to promote from")
        for spec in self.environments:  # every chain must end at the entry
            seen = {spec.name}
            upstream = spec.upstream
            while upstream is not None:
                if upstream in seen:
                    raise ValueError(f"{spec.name}: its upstreams loop back to {upstream}")
                seen.add(upstream)
                upstream = self._spec(upstream).upstream
        return self

    def _spec(self, name: str) -> EnvironmentSpec:
        return next(spec for spec in self.environments if spec.name == name)

    @property
    def names(self) -> list[str]:
        """Every environment's name, in promotion order (an upstream before its downstreams)."""
        return [spec.name for spec in self.ordered()]

    def ordered(self) -> list[EnvironmentSpec]:
        """The environments, each after its upstream."""
        done: list[EnvironmentSpec] = []
        pending = list(self.environments)
        while pending:
            ready = [
                s for s in pending if s.upstream is None or s.upstream in {d.name for d in done}
            ]
            done += ready
            pending = [s for s in pending if s not in ready]
        return done

    @property
    def entry(self) -> EnvironmentSpec:
        """Where CI's releases enter (the one without an upstream)."""
        return next(spec for spec in self.environments if spec.upstream is None)

    def get(self, name: str) -> EnvironmentSpec:
        """The environment ``name``; RejectedError naming the known ones when there is none."""
        for spec in self.environments:
            if spec.name == name:
                return spec
        raise RejectedError(
            f"unknown environment {name!r}: known environments are {', '.join(self.names)}"
        )

    def downstream(self, name: str) -> list[EnvironmentSpec]:
        """The environments whose releases come from ``name``."""
        return [spec for spec in self.ordered() if spec.upstream == name]


class EnvironmentsError(ConfigTextError):
    """The environments configuration is malformed; the message says where."""


def load_environments(
    text: str | None, file: Path | None, *, default: EnvironmentSpec
) -> Environments:
    """The environments of ``DEPLOYER_ENVIRONMENTS`` (text) or ``DEPLOYER_ENVIRONMENTS_FILE``;
    neither: ``default`` alone."""
    loaded = load_config_text(
        Environments, text, file, variable="DEPLOYER_ENVIRONMENTS",
        what="the environments configuration", root="environments", error=EnvironmentsError,
    )  # fmt: skip
    return loaded or Environments(environments=[default])
