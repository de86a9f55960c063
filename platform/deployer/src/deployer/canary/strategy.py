"""A service's rollout strategy, read from its merged chart values (``strategy:``).

:class:`StrategyValues` is the shape of those values: canary_strategy() validates them with it
and turns them into typed steps and the analysis settings, and the service charts' schema of
``strategy`` is generated from it (charts/schemagen), so the two cannot disagree. The defaults
are the deployer's; the charts' values.yaml set every key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from deployer.canary.analysis import Thresholds

StepKind = Literal["weight", "pause", "analysis"]


@dataclass(frozen=True)
class Step:
    """One canary step: set a weight, pause (``seconds`` None: until promoted by hand), or
    analyse (``count`` measurements, None: the analysis' count)."""

    kind: StepKind
    weight: int | None = None
    seconds: int | None = None
    count: int | None = None

    def describe(self) -> str:
        """E.g. ``weight 25%``, ``pause 30 s``, ``pause until promoted``, ``analysis x3``."""
        if self.kind == "weight":
            return f"weight {self.weight}%"
        if self.kind == "pause":
            return f"pause {self.seconds} s" if self.seconds is not None else "pause until promoted"
        return f"analysis x{self.count}" if self.count is not None else "analysis"


@dataclass(frozen=True)
class AnalysisSettings:
    """How the canary is measured (one measurement per interval, over that window), typed from
    :class:`AnalysisValues`, which holds the defaults."""

    interval_seconds: int
    count: int
    failure_limit: int
    inconclusive_limit: int
    thresholds: Thresholds


@dataclass(frozen=True)
class CanaryStrategy:
    """The steps of a canary and how its analysis steps measure."""

    steps: tuple[Step, ...]
    analysis: AnalysisSettings

    def describe(self) -> str:
        """The steps in one line: ``weight 25% → analysis → weight 50% → analysis → promote``."""
        return " → ".join([*(step.describe() for step in self.steps), "promote"])


class PauseValues(BaseModel):
    """A pause step's value: ``{}`` until promoted by hand, or ``{seconds: N}``."""

    model_config = ConfigDict(extra="forbid")

    seconds: int | None = Field(default=None, ge=1, description="Resume after N seconds.")


class AnalysisStepValues(BaseModel):
    """An analysis step's value: ``{}`` (the analysis' count) or ``{count: N}``."""

    model_config = ConfigDict(extra="forbid")

    count: int | None = Field(
        default=None, ge=1, description="Measurements; overrides analysis.count."
    )


class StepValues(BaseModel):
    """One step of ``strategy.canary.steps``: exactly one of its keys."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        # Exactly one key, said as a closed object of one property (rather than a oneOf of
        # three), so that helm names the one thing wrong instead of three alternatives.
        json_schema_extra={"minProperties": 1, "maxProperties": 1},
    )

    set_weight: int | None = Field(
        default=None,
        ge=1,
        le=100,
        alias="setWeight",
        description="Percent of the replicas that run the new image.",
    )
    pause: PauseValues | None = Field(
        default=None,
        description="{}: wait until promoted by hand; {seconds: N}: wait N seconds.",
    )
    analysis: AnalysisStepValues | None = Field(
        default=None,
        description="Measure the canary (strategy.canary.analysis) before going on.",
    )

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_key(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping):
            if len(raw) != 1:
                raise ValueError(
                    f"a canary step is exactly one of setWeight, pause or analysis, not {dict(raw)}"
                )
            # ``pause:`` / ``analysis:`` without a value mean {} (as YAML writes them).
            return {key: {} if value is None and key != "setWeight" else value
                    for key, value in raw.items()}  # fmt: skip
        return raw

    def to_step(self) -> Step:
        """The typed step."""
        if self.set_weight is not None:
            return Step("weight", weight=self.set_weight)
        if self.pause is not None:
            return Step("pause", seconds=self.pause.seconds)
        assert self.analysis is not None  # exactly one key, checked above
        return Step("analysis", count=self.analysis.count)


STEP = (
    "One step, exactly one of: setWeight (percent of the replicas on the new image), pause ({} "
    "until promoted by hand, or {seconds: N}), analysis ({} or {count: N})."
)
FIRST_STEP = "The first step is a setWeight: before it no pod runs the new image."


def _first_step_schema(schema: dict[str, Any]) -> None:
    # JSON Schema says "the first item is a setWeight step" with prefixItems; pydantic cannot.
    schema["prefixItems"] = [
        {**schema["items"], "required": ["setWeight"], "description": FIRST_STEP}
    ]


_DEFAULT_LIMITS = Thresholds()


class AnalysisValues(BaseModel):
    """``strategy.canary.analysis``: what one analysis step measures, and its thresholds (the
    keys are the fields in camelCase; each field's docstring is its description in the schema)."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        use_attribute_docstrings=True,
    )

    interval_seconds: int = Field(default=30, ge=5, le=3600)
    """One measurement per interval, over that window."""
    count: int = Field(default=3, ge=1, le=1000)
    """Measurements per analysis step."""
    failure_limit: int = Field(default=1, ge=1)
    """Failed measurements that abort the canary."""
    inconclusive_limit: int = Field(default=2, ge=1)
    """Inconclusive measurements (no traffic) that pause it."""
    min_requests: int = Field(default=_DEFAULT_LIMITS.min_requests, ge=1)
    """Canary requests (or handler deliveries) per window, else the measurement is inconclusive."""
    success_rate: float = Field(default=_DEFAULT_LIMITS.min_success_rate, ge=0, le=1)
    """Lowest non-5xx share of canary requests."""
    p99_milliseconds: float = Field(default=_DEFAULT_LIMITS.max_p99_seconds * 1000, gt=0)
    """Highest canary p99 latency."""
    max_success_rate_drop: float = Field(default=_DEFAULT_LIMITS.max_success_rate_drop, ge=0, le=1)
    """Largest drop below the stable pods' success rate (same window)."""
    max_p99_ratio: float = Field(default=_DEFAULT_LIMITS.max_p99_ratio, ge=1)
    """Highest canary p99 / stable p99."""
    max_handler_failures: int = Field(default=_DEFAULT_LIMITS.max_handler_failures, ge=0)
    """Event deliveries the canary retried or dead-lettered."""
    max_dead_letters: int = Field(default=_DEFAULT_LIMITS.max_dead_letters, ge=0)
    """Dead letters from the canary."""

    def to_settings(self) -> AnalysisSettings:
        """The typed analysis settings."""
        return AnalysisSettings(
            interval_seconds=self.interval_seconds,
            count=self.count,
            failure_limit=self.failure_limit,
            inconclusive_limit=self.inconclusive_limit,
            thresholds=Thresholds(
                min_success_rate=self.success_rate,
                max_p99_seconds=self.p99_milliseconds / 1000,
                max_success_rate_drop=self.max_success_rate_drop,
                max_p99_ratio=self.max_p99_ratio,
                min_requests=self.min_requests,
                max_handler_failures=self.max_handler_failures,
                max_dead_letters=self.max_dead_letters,
            ),
        )


class CanaryValues(BaseModel):
    """``strategy.canary``: the steps, and how their analysis steps measure."""

    model_config = ConfigDict(extra="forbid")

    steps: list[Annotated[StepValues, Field(description=STEP)]] = Field(
        min_length=1,
        description="Run in order; a last setWeight below 100 is followed by the promotion.",
        json_schema_extra=_first_step_schema,
    )
    analysis: AnalysisValues = Field(
        default_factory=AnalysisValues,
        description="How an analysis step measures the canary (Prometheus) and its thresholds.",
    )

    @field_validator("steps")
    @classmethod
    def _first_is_a_weight(cls, steps: list[StepValues]) -> list[StepValues]:
        if steps[0].set_weight is None:
            raise ValueError(
                "the first step must be a setWeight: before it no pod runs the new image"
            )
        return steps


class StrategyValues(BaseModel):
    """``strategy``: how a new image reaches the pods (the service charts; not the deployer's)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["rolling", "canary"] = Field(
        default="rolling",
        description="rolling: the Deployment's rolling update; canary: the deployer runs the new "
        "image on a share of the pods and measures it between steps.",
    )
    canary: CanaryValues


def canary_strategy(values: Mapping[str, Any]) -> CanaryStrategy | None:
    """The canary of these merged values, or None for the rolling update.

    ValueError, naming the value, when the strategy is a canary that StrategyValues refuses.
    """
    strategy = values.get("strategy") or {}
    if strategy.get("type", "rolling") != "canary":
        return None
    try:
        parsed = StrategyValues.model_validate(strategy)
    except ValidationError as exc:
        problems = "; ".join(
            f"strategy.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ValueError(f"the canary strategy is invalid: {problems}") from None
    canary = parsed.canary
    return CanaryStrategy(
        tuple(step.to_step() for step in canary.steps), canary.analysis.to_settings()
    )
