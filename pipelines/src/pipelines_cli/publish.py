"""The pipeline event: one CloudEvent per built image, published to JetStream exactly once."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nats import errors as nats_errors
from pydantic import ValidationError

from deploy_contract.events import ARTIFACT_PUBLISHED, ArtifactPublished, pipeline_subject
from deploy_contract.images import ImageRejectedError, parse_image
from kit.events import CloudEvent, EventBus, PublishDeniedError
from kit.events.streams import PIPELINE
from kit.settings import NatsSettings
from kit.validation import validation_problems
from pipelines_cli import gitrepo
from pipelines_cli.errors import GitError, PipelineError

# Fixed namespace of the deterministic deployment ids (uuid5 of run id and service).
DEPLOYMENT_NAMESPACE = uuid.UUID("9b0f3c1e-5a57-4c41-9d6e-3f1c2b7a8e40")
EVENT_SOURCE = "/flotilla/pipelines"
# How many connect timeouts (NATS_CONNECT_TIMEOUT_SECONDS) a CI step waits for NATS.
CONNECT_ATTEMPTS = 5
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def deployment_id(run_id: str, service: str) -> str:
    """The event id (= deployment id) of ``service`` in pipeline run ``run_id``.

    The same for every attempt of the run, so a retried job publishes the same id and JetStream
    stores it once (``Nats-Msg-Id``): a retry never deploys twice.
    """
    if not run_id.strip():
        raise PipelineError(
            "the pipeline run id is empty: pass --run-id or set PIPELINE_RUN_ID "
            "(GitHub: github:${{ github.run_id }}; GitLab: gitlab:$CI_PIPELINE_ID)"
        )
    return str(uuid.uuid5(DEPLOYMENT_NAMESPACE, f"{run_id.strip()}\n{service}"))


def new_traceparent() -> str:
    """A fresh W3C traceparent (sampled), for a pipeline that brings no trace of its own."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def checked_traceparent(value: str | None) -> str:
    """``value`` when it is a valid W3C traceparent, a new one when unset."""
    if value is None or not value.strip():
        return new_traceparent()
    value = value.strip()
    if not _TRACEPARENT.match(value):
        raise PipelineError(
            f"TRACEPARENT {value!r} is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>): "
            "fix it or unset it to start a new trace"
        )
    return value


def parse_commit_time(value: str) -> datetime:
    """``--commit-time``: an ISO 8601 date-time with a UTC offset."""
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise PipelineError(
            f"--commit-time {value!r} is not an ISO 8601 date-time with a UTC offset: pass one "
            "like 2026-12-07T09:30:00+01:00 (git show -s --format=%cI <commit> prints it)"
        )
    return at


def commit_time_of(repo: Path, rev: str) -> datetime | None:
    """The committer date of ``rev`` in ``repo``; None when git cannot tell (a shallow clone
    without the commit, a sha from elsewhere): the deployer then counts the lead time from when
    it received the event, which beats failing the job."""
    sha = gitrepo.resolve(repo, rev)
    if sha is None:
        return None
    try:
        return datetime.fromisoformat(gitrepo.commit_time(repo, sha))
    except (GitError, ValueError):
        return None


@dataclass(frozen=True)
class ArtifactRequest:
    """What CI asks the deployer to deploy."""

    service: str
    image: str
    commit: str
    run_id: str
    pipeline_id: str
    commit_time: datetime | None = None
    pipeline_url: str | None = None
    rollback: bool = False
    values: dict[str, Any] | None = None


def artifact_event(request: ArtifactRequest, traceparent: str) -> CloudEvent:
    """The ``dev.cdevents.artifact.published.0.2.0`` event, validated as the deployer will."""
    try:
        parse_image(request.image)
    except ImageRejectedError as exc:
        raise PipelineError(f"the deployer would reject the image: {exc}") from None
    try:
        data = ArtifactPublished(
            service=request.service,
            image=request.image,
            commit=request.commit,
            commit_time=request.commit_time,
            pipeline_id=request.pipeline_id,
            pipeline_url=request.pipeline_url,
            rollback=request.rollback,
            values=request.values or {},
        )
    except ValidationError as exc:
        problems = validation_problems(exc, "event")
        raise PipelineError(f"invalid pipeline event ({problems}): fix these options") from None
    return CloudEvent.new(
        ARTIFACT_PUBLISHED,
        source=EVENT_SOURCE,
        data=data.model_dump(mode="json"),
        subject=request.service,
        id=deployment_id(request.run_id, request.service),
        traceparent=traceparent,
    )


@dataclass(frozen=True)
class Published:
    """Where the event went, and whether JetStream already had it (a retried job)."""

    event: CloudEvent
    subject: str
    stream: str
    sequence: int
    duplicate: bool


async def connect(settings: NatsSettings) -> EventBus:
    """A connected EventBus, or a PipelineError naming the settings to check."""
    bus = EventBus(settings, client_name="flotilla-pipelines")
    # The bus retries a first connection forever (right for a service); a CI step gives up.
    deadline = CONNECT_ATTEMPTS * settings.connect_timeout_seconds
    try:
        await asyncio.wait_for(bus.connect(), deadline)
    except Exception as exc:  # nats-py raises several unrelated types when it cannot connect
        raise PipelineError(
            f"cannot connect to NATS at {settings.url} within {deadline:g} s ({exc!r}): check "
            "NATS_URL, NATS_USER and NATS_PASSWORD (or NATS_CREDS_FILE), and that the server is "
            "reachable from CI"
        ) from None
    return bus


async def publish_artifact(
    settings: NatsSettings, service: str, event: CloudEvent, traceparent: str, timeout: float = 10.0
) -> Published:
    """Publish ``event`` on ``pipeline.artifact.<service>`` (creating the PIPELINE stream if
    missing) and wait for JetStream's ack; a repeated event id is stored once."""
    subject = pipeline_subject(service)
    bus = await connect(settings)
    try:
        await bus.ensure_streams([PIPELINE])
        ack = await bus.publish(
            subject, event, headers={"traceparent": traceparent}, timeout=timeout
        )
    except PublishDeniedError as exc:
        raise PipelineError(str(exc)) from None
    except (TimeoutError, nats_errors.Error) as exc:
        raise PipelineError(
            f"JetStream did not store the event on {subject} ({exc!r}): check that the server "
            "runs with JetStream enabled, then retry the job (a retry is stored once)"
        ) from None
    finally:
        await bus.drain()
    return Published(event, subject, ack.stream, ack.seq, bool(ack.duplicate))
