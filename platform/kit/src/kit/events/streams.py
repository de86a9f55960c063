"""Stream definitions and their idempotent provisioning."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream as code: name, subjects and retention."""

    name: str
    subjects: tuple[str, ...]
    max_age_seconds: float = 7 * 24 * 3600
    duplicate_window_seconds: float = 120.0
    retention: RetentionPolicy = RetentionPolicy.LIMITS

    def __post_init__(self) -> None:
        if self.duplicate_window_seconds > self.max_age_seconds:
            # JetStream refuses such a stream: a message cannot be remembered past its age.
            raise ValueError(
                f"stream {self.name}: the duplicate window ({self.duplicate_window_seconds}s) "
                f"exceeds the max age ({self.max_age_seconds}s); shorten the window or keep "
                "messages longer"
            )

    def config(self) -> StreamConfig:
        """The nats-py configuration for this stream (file storage, one replica locally)."""
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=self.retention,
            storage=StorageType.FILE,
            max_age=self.max_age_seconds,
            duplicate_window=self.duplicate_window_seconds,
        )


AUTH = StreamSpec("AUTH", ("auth.>",))
ORDERS = StreamSpec("ORDERS", ("orders.>",))
PAYMENTS = StreamSpec("PAYMENTS", ("payments.>",))
PIPELINE = StreamSpec("PIPELINE", ("pipeline.>",), duplicate_window_seconds=24 * 3600)
# A day of de-duplication: a deployer replica that takes a deployment over hours later may
# publish its last transition again (the same event id), and must not store it twice.
DEPLOY = StreamSpec("DEPLOY", ("deploy.>",), duplicate_window_seconds=24 * 3600)
DEAD_LETTER = StreamSpec("DEADLETTER", ("deadletter.>",), max_age_seconds=30 * 24 * 3600)


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Create the stream, or update it when its subjects or limits drifted; safe to repeat."""
    wanted = spec.config()
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(config=wanted)
        return
    current = info.config
    if (
        sorted(current.subjects or []) != sorted(wanted.subjects or [])
        or current.max_age != wanted.max_age
        or current.duplicate_window != wanted.duplicate_window
    ):
        await js.update_stream(config=wanted)
