"""Drift reports: the data of ``deploy.<service>.drifted`` events (see events.DRIFTED_TYPE)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from deploy_contract.changes import FieldChange


class DriftMode(StrEnum):
    """What the deployer does about a release's drift."""

    OFF = "off"
    WARN = "warn"
    CORRECT = "correct"


class DriftedField(FieldChange):
    """One drifted field of one object: ``before`` is live, ``after`` what the manifest says."""

    object: str = Field(examples=["Deployment/order"])


class DriftReport(BaseModel):
    """The result of one drift check of one release (the data of ``deploy.<service>.drifted``)."""

    service: str
    environment: str | None = Field(default=None, description="Where the release lives")
    mode: DriftMode
    checked_at: datetime
    revision: int | None = None
    fields: list[DriftedField] = Field(default_factory=list)
    corrected: bool = Field(default=False, description="The fields were applied back")
    error: str | None = None

    @property
    def drifted(self) -> bool:
        """True when some live field differs from the release's manifest."""
        return bool(self.fields)

    def summary(self) -> str:
        """One line, e.g. ``order: 1 field drifted (Deployment/order containers[order].image)``."""
        if self.error:
            return f"{self.service}: drift not checked: {self.error}"
        if not self.fields:
            return f"{self.service}: no drift"
        shown = ", ".join(f"{f.object} {f.path}" for f in self.fields[:3])
        more = f" and {len(self.fields) - 3} more" if len(self.fields) > 3 else ""
        count = len(self.fields)
        what = "corrected" if self.corrected else "drifted"
        return f"{self.service}: {count} field{'s' * (count > 1)} {what} ({shown}{more})"


def report_json(report: DriftReport) -> dict[str, Any]:
    """The report as event data (JSON-safe)."""
    data: dict[str, Any] = json.loads(report.model_dump_json(exclude_none=True))
    return data
