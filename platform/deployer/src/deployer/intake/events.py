"""Intake of pipeline events: a CloudEvent on ``pipeline.artifact.<service>`` becomes a checked
deployment request, or a RejectedError whose message is the reason."""

from __future__ import annotations

from pydantic import ValidationError

from deploy_contract.events import ARTIFACT_PUBLISHED, ArtifactPublished, service_from_subject
from deployer.intake.checks import RejectedError
from kit.events import CloudEvent
from kit.validation import validation_problems


def request_of(event: CloudEvent, subject: str) -> ArtifactPublished:
    """The deployment request an event carries, well formed and on its service's subject (the
    request's own checks follow, see :meth:`deployer.intake.checks.Intake.check_request`)."""
    if event.type != ARTIFACT_PUBLISHED:
        raise RejectedError(f"event type {event.type!r} is not {ARTIFACT_PUBLISHED!r}")
    service = service_from_subject(subject)
    if service is None:
        raise RejectedError("publish pipeline events on pipeline.artifact.<service>")
    try:
        request = ArtifactPublished.model_validate(event.data)
    except ValidationError as exc:
        problems = validation_problems(exc, "data")
        raise RejectedError(f"missing or malformed fields: {problems}") from None
    if request.service != service:
        raise RejectedError(
            f"the event names service {request.service!r} but came on the subject of "
            f"{service!r}; publish on pipeline.artifact.{request.service}"
        )
    return request
