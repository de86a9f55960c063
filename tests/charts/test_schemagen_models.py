"""The deployer's parts of the chart schemas are generated from its pydantic models
(charts/schemagen/models.py): a change of a model is a change of the schemas, and the charts'
values fit the models."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from charts.schemagen.models import ModelSchemaError, enum_values, from_model
from deployer.canary.strategy import AnalysisValues, StepValues, canary_strategy
from deployer.drift.config import DriftRules
from deployer.plan import Attention
from tests.charts.chartsupport import SERVICE_CHARTS

CHARTS = Path(__file__).resolve().parents[2] / "charts"


def schema_of(chart: str) -> dict[str, Any]:
    """The committed values.schema.json of ``chart``."""
    return json.loads((CHARTS / chart / "values.schema.json").read_text())  # type: ignore[no-any-return]


def aliases(model: type[BaseModel]) -> list[str]:
    """The keys of ``model`` as the chart values spell them."""
    return [field.alias or name for name, field in model.model_fields.items()]


class Colour(StrEnum):
    RED = "red"


class MoreColour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Paint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    colour: Colour = Field(description="Which.")
    coats: int | None = Field(default=None, ge=1)


class MorePaint(Paint):
    colour: MoreColour = Field(description="Which.")  # type: ignore[assignment]


def test_a_new_enum_member_is_a_new_schema_value() -> None:
    assert from_model(Paint)["properties"]["colour"] == {"enum": ["red"], "description": "Which."}
    assert from_model(MorePaint)["properties"]["colour"]["enum"] == ["red", "blue"]
    assert enum_values(MoreColour) == {"enum": ["red", "blue"]}


def test_the_chart_style() -> None:
    assert from_model(Paint, every_key_required=True) == {
        "type": "object",
        "additionalProperties": False,
        "required": ["colour"],  # coats is optional
        "properties": {
            "colour": {"enum": ["red"], "description": "Which."},
            "coats": {"type": "integer", "minimum": 1},
        },
    }


def test_a_refinement_of_a_missing_field_is_an_error() -> None:
    with pytest.raises(ModelSchemaError, match=r"Paint.colours"):
        from_model(Paint, refine={"Paint.colours": {"pattern": "^r"}})


def test_the_deployer_chart_carries_the_policy_and_drift_enums() -> None:
    properties = schema_of("deployer")["properties"]
    for level in (
        properties["policy"]["properties"]["default"],
        properties["policy"]["properties"]["services"]["additionalProperties"],
    ):
        assert level["properties"]["requireApproval"]["items"] == enum_values(Attention)
    assert enum_values(Attention) == {"enum": [kind.value for kind in Attention]}
    drift = properties["drift"]["properties"]["rules"]["properties"]["default"]
    # DriftRules.mode's enum, wherever it is defined (deployer.drift or the event contract).
    modes = DriftRules.model_fields["mode"].annotation
    assert isinstance(modes, type)
    assert issubclass(modes, StrEnum)
    assert drift["properties"]["mode"] == {"enum": [mode.value for mode in modes]}


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_the_service_charts_carry_the_canary_model(chart: str) -> None:
    canary = schema_of(chart)["properties"]["strategy"]["properties"]["canary"]["properties"]
    assert list(canary["analysis"]["properties"]) == aliases(AnalysisValues)
    assert canary["analysis"]["required"] == sorted(aliases(AnalysisValues))
    assert list(canary["steps"]["items"]["properties"]) == aliases(StepValues)


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_the_charts_canary_defaults_are_a_strategy_the_deployer_accepts(chart: str) -> None:
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    values["strategy"]["type"] = "canary"
    strategy = canary_strategy(values)
    assert strategy is not None
    assert strategy.steps[0].kind == "weight"
