"""The CloudEvents 1.0 envelope (structured JSON mode) as a typed model."""

from __future__ import annotations

import builtins
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kit.validation import validation_problems

M = TypeVar("M", bound=BaseModel)
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


class InvalidEventError(ValueError):
    """A message body is not a valid CloudEvent; the text says which attribute is wrong."""


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event; extension attributes are kept as extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str | None = "application/json"
    dataschema: str | None = None
    data: Any = None

    @model_validator(mode="after")
    def _extension_names_are_valid(self) -> CloudEvent:
        for name in self.model_extra or {}:
            if not _EXTENSION_NAME.match(name):
                raise ValueError(
                    f"extension attribute {name!r} must be 1-20 lowercase letters or digits"
                )
        return self

    @classmethod
    def new(
        cls,
        type: str,
        source: str,
        data: Any,
        *,
        subject: str | None = None,
        id: str | None = None,
        **extensions: Any,
    ) -> CloudEvent:
        """Create an event with a fresh id (or the given one) stamped now."""
        return cls(
            id=id or str(uuid.uuid4()),
            type=type,
            source=source,
            subject=subject,
            data=data,
            **extensions,
        )

    def to_bytes(self) -> bytes:
        """Serialise as a structured-mode JSON CloudEvent."""
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CloudEvent:
        """Parse a structured-mode JSON CloudEvent, or raise InvalidEventError with the reason."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            reasons = validation_problems(exc, "body")
            raise InvalidEventError(f"not a valid CloudEvent: {reasons}") from None

    def data_as(self, model: builtins.type[M]) -> M:
        """Validate the event's data against ``model``; a mismatch is a permanent error."""
        from kit.events.errors import PermanentEventError

        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise PermanentEventError(
                f"event {self.id} ({self.type}) has data that does not match "
                f"{model.__name__}: {exc.errors(include_url=False)}"
            ) from None
