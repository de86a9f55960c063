"""A release: what CI built once, never rebuilt for the next environment.

Its id is a digest of what it is (the service, the image, the chart's version, the values it
adds, the commit), so publishing the same thing twice names the same release, and anything
different is a different one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from deploy_contract.events import ArtifactPublished
from deploy_contract.images import parse_image


def values_digest(values: dict[str, Any]) -> str:
    """The sha256 of ``values`` in canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def chart_version(chart_dir: Path) -> str:
    """The ``version`` of the chart in ``chart_dir``."""
    loaded = yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}
    return str(loaded.get("version", "0.0.0"))


class Release(BaseModel):
    """One build of a service, as CI published it, promoted unchanged from environment to
    environment."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="<service>-<12 hex digits of the release's digest>")
    service: str
    image: str
    image_digest: str | None = Field(description="The image's sha256 digest, when CI gave it")
    chart_version: str
    values_digest: str = Field(description="sha256 of the values the release adds")
    values: dict[str, Any] = Field(default_factory=dict)
    commit: str
    commit_time: AwareDatetime | None = None
    pipeline_id: str
    pipeline_url: str | None = None
    created_at: AwareDatetime

    @classmethod
    def of(cls, request: ArtifactPublished, chart: str, created_at: datetime) -> Release:
        """The release CI's ``request`` publishes, of a chart at version ``chart``."""
        digest = values_digest(request.values)
        identity = json.dumps(
            [request.service, request.image, chart, digest, request.commit], separators=(",", ":")
        )
        short = hashlib.sha256(identity.encode()).hexdigest()[:12]
        return cls(
            id=f"{request.service}-{short}",
            service=request.service,
            image=request.image,
            image_digest=parse_image(request.image).digest,
            chart_version=chart,
            values_digest=digest,
            values=request.values,
            commit=request.commit,
            commit_time=request.commit_time,
            pipeline_id=request.pipeline_id,
            pipeline_url=request.pipeline_url,
            created_at=created_at,
        )

    def request(self) -> ArtifactPublished:
        """The deployment request of this release, the same in every environment."""
        return ArtifactPublished(
            service=self.service,
            image=self.image,
            commit=self.commit,
            commit_time=self.commit_time,
            pipeline_id=self.pipeline_id,
            pipeline_url=self.pipeline_url,
            values=self.values,
        )
