"""A chart's default values and its JSON Schema, so intake can refuse what helm would refuse."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from deployer.intake.valuepaths import ValuePath


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge chart values: ``override`` wins, nested mappings merge."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def without_nulls(values: Any) -> Any:
    """Values as helm sees them after merging: a key set to null is removed."""
    if isinstance(values, dict):
        return {key: without_nulls(item) for key, item in values.items() if item is not None}
    return values


@dataclass
class _Loaded:
    stamp: tuple[float, float]
    defaults: dict[str, Any]
    validator: Any


class ChartValues:
    """``values.yaml`` and ``values.schema.json`` of one chart, re-read when they change."""

    def __init__(self, chart: Path) -> None:
        self.chart = chart
        self._loaded: _Loaded | None = None

    def _load(self) -> _Loaded:
        values_file, schema_file = self.chart / "values.yaml", self.chart / "values.schema.json"
        stamp = (_mtime(values_file), _mtime(schema_file))
        if self._loaded is None or self._loaded.stamp != stamp:
            defaults = yaml.safe_load(values_file.read_text()) if values_file.exists() else {}
            validator = None
            if schema_file.exists():
                validator = jsonschema_rs.validator_for(json.loads(schema_file.read_text()))
            self._loaded = _Loaded(stamp, defaults or {}, validator)
        return self._loaded

    def defaults(self) -> dict[str, Any]:
        """The chart's own defaults (``values.yaml``)."""
        return self._load().defaults

    def schema_violations(self, values: dict[str, Any]) -> list[str]:
        """What the chart's schema refuses in ``values`` (merged over the chart's defaults)."""
        loaded = self._load()
        if loaded.validator is None:
            return []
        merged = without_nulls(merge(loaded.defaults, values))
        return [
            f"values.{ValuePath(tuple(error.instance_path)) or '(root)'}: {error.message} "
            f"(the {self.chart.name} chart's values.schema.json)"
            for error in loaded.validator.iter_errors(merged)
        ]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
