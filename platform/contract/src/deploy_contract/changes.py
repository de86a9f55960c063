"""One changed field of a Kubernetes object, as plans and drift reports name it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FieldChange(BaseModel):
    """One changed field: its path and its values before and after (None: absent)."""

    path: str = Field(examples=["containers[order].image"])
    before: str | None = None
    after: str | None = None
