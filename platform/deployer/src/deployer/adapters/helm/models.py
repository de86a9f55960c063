"""What helm answers: a finished process, a release's status and its revisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

PENDING_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
# Revisions that were deployed successfully at some point (helm's own rollback targets).
GOOD_STATUSES = frozenset({"deployed", "superseded"})


@dataclass(frozen=True)
class HelmResult:
    """One finished helm process."""

    command: str
    returncode: int
    stdout: str
    stderr: str
    started_at: float  # time.monotonic() right after the process was started
    duration_seconds: float
    revision: int | None = None  # the release revision an upgrade created


class ReleaseStatus(BaseModel):
    """A release as helm last recorded it."""

    name: str
    revision: int
    status: str
    description: str
    updated: datetime
    chart: str
    app_version: str
    image_repository: str | None = None
    image_tag: str | None = None

    @property
    def pending(self) -> bool:
        """True while an install, upgrade or rollback is in progress (or was interrupted)."""
        return self.status in PENDING_STATUSES


class ReleaseRevision(BaseModel):
    """One entry of ``helm history``."""

    revision: int
    updated: datetime
    status: str
    chart: str
    app_version: str
    description: str
    rollback_revision: int | None = None
