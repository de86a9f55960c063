"""Dead-letter records: the original message, how often it was tried, and why it failed."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Literal

from nats.aio.msg import Msg
from pydantic import BaseModel

from kit.events.bus import EventBus
from kit.events.envelope import CloudEvent
from kit.metrics import EVENTS_DEAD_LETTERED

DEAD_LETTER_TYPE = "dev.flotilla.deadletter.v1"
DeadLetterReason = Literal[
    "invalid_event", "permanent_error", "handler_failed", "max_deliver_exceeded"
]


class DeadLetter(BaseModel):
    """The data of a dead-letter event; enough to inspect and replay the original."""

    consumer: str
    stream: str
    stream_sequence: int
    subject: str
    attempts: int
    reason: DeadLetterReason
    last_error: str
    failed_at: datetime
    headers: dict[str, str]
    payload: str
    payload_encoding: Literal["utf-8", "base64"]


def dead_letter_subject(service: str, consumer: str) -> str:
    """Where a service's dead letters go: ``deadletter.<service>.<consumer>``."""
    return f"deadletter.{service}.{consumer}"


def _record(msg: Msg, consumer: str, reason: DeadLetterReason, error: str) -> DeadLetter:
    metadata = msg.metadata
    encoding: Literal["utf-8", "base64"]
    try:
        payload, encoding = msg.data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(msg.data).decode(), "base64"
    return DeadLetter(
        consumer=consumer,
        stream=metadata.stream,
        stream_sequence=metadata.sequence.stream,
        subject=msg.subject,
        attempts=metadata.num_delivered,
        reason=reason,
        last_error=error,
        failed_at=datetime.now(UTC),
        headers=dict(msg.headers or {}),
        payload=payload,
        payload_encoding=encoding,
    )


async def dead_letter(
    bus: EventBus,
    service: str,
    consumer: str,
    msg: Msg,
    reason: DeadLetterReason,
    error: str,
) -> None:
    """Store a dead-letter record for ``msg``; repeated calls for one message store one record."""
    record = _record(msg, consumer, reason, error)
    event = CloudEvent.new(
        DEAD_LETTER_TYPE,
        source=f"/services/{service}",
        data=record.model_dump(mode="json"),
        subject=msg.subject,
        # One record per original message and consumer, even if this runs twice.
        id=f"dlq-{consumer}-{record.stream}-{record.stream_sequence}",
    )
    await bus.publish(dead_letter_subject(service, consumer), event)
    EVENTS_DEAD_LETTERED.labels(consumer, reason).inc()
