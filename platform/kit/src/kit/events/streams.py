"""Stream definitions and their idempotent provisioning, with as many copies as the process's
NATS_STREAM_REPLICAS asks for."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

log = logging.getLogger(__name__)

T = TypeVar("T")
# JetStream's error codes for copies it cannot place.
NOT_CLUSTERED = 10074
NO_SUITABLE_PEERS = 10005


class StreamReplicasError(RuntimeError):
    """JetStream cannot keep as many copies of a stream as NATS_STREAM_REPLICAS asks for."""


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

    def config(self, replicas: int) -> StreamConfig:
        """The nats-py configuration for this stream: file storage, ``replicas`` copies (1 on
        a single server, 3 on a three-member cluster)."""
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=self.retention,
            storage=StorageType.FILE,
            max_age=self.max_age_seconds,
            duplicate_window=self.duplicate_window_seconds,
            num_replicas=replicas,
        )


AUTH = StreamSpec("AUTH", ("auth.>",))
ORDERS = StreamSpec("ORDERS", ("orders.>",))
PAYMENTS = StreamSpec("PAYMENTS", ("payments.>",))
PIPELINE = StreamSpec("PIPELINE", ("pipeline.>",), duplicate_window_seconds=24 * 3600)
# A day of de-duplication: a deployer replica that takes a deployment over hours later may
# publish its last transition again (the same event id), and must not store it twice.
DEPLOY = StreamSpec("DEPLOY", ("deploy.>",), duplicate_window_seconds=24 * 3600)
DEAD_LETTER = StreamSpec("DEADLETTER", ("deadletter.>",), max_age_seconds=30 * 24 * 3600)


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int) -> None:
    """Create the stream with ``replicas`` copies, or update it when its subjects or limits
    drifted or it has fewer copies (JetStream adds them to a live stream); safe to repeat."""
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await placed(js.add_stream(config=spec.config(replicas)), spec.name, replicas)
        return
    current = info.config
    copies = kept_replicas(spec.name, current.num_replicas, replicas)
    wanted = spec.config(copies)
    if (
        sorted(current.subjects or []) != sorted(wanted.subjects or [])
        or current.max_age != wanted.max_age
        or current.duplicate_window != wanted.duplicate_window
        or (current.num_replicas or 1) != copies
    ):
        await placed(js.update_stream(config=wanted), spec.name, copies)


async def raise_replicas(js: JetStreamContext, stream: str, replicas: int) -> None:
    """Give the existing stream ``stream`` (a key-value bucket's ``KV_<bucket>``, say)
    ``replicas`` copies when it has fewer; the rest of its configuration is kept."""
    current = (await js.stream_info(stream)).config
    copies = kept_replicas(stream, current.num_replicas, replicas)
    if (current.num_replicas or 1) != copies:
        raised = dataclasses.replace(current, num_replicas=copies)
        await placed(js.update_stream(config=raised), stream, copies)


def kept_replicas(stream: str, current: int | None, wanted: int) -> int:
    """The copies ``stream`` should have: ``wanted``, or more when it has more already.

    A process never takes copies away: one with the single-server default (a CI step, a local
    tool pointed at the cluster) would otherwise leave the cluster's streams on one member.
    Lowering them is an operator's decision (``nats stream edit --replicas``)."""
    have = current or 1
    if have > wanted:
        log.info(
            "stream keeps more copies than NATS_STREAM_REPLICAS; not lowering them",
            extra={"stream": stream, "replicas": have, "wanted": wanted},
        )
        return have
    return wanted


async def placed(request: Awaitable[T], stream: str, replicas: int) -> T:
    """The result of creating or updating ``stream`` with ``replicas`` copies; a
    :class:`StreamReplicasError` saying what to change when JetStream cannot place them."""
    try:
        return await request
    except APIError as exc:
        if exc.err_code == NOT_CLUSTERED:
            raise StreamReplicasError(
                f"cannot keep {replicas} copies of stream {stream}: the NATS server is not part "
                "of a cluster. Set NATS_STREAM_REPLICAS=1 for a single server, or point NATS_URL "
                f"at the members of a JetStream cluster of at least {replicas}."
            ) from exc
        if exc.err_code == NO_SUITABLE_PEERS:
            raise StreamReplicasError(
                f"cannot place {replicas} copies of stream {stream}: fewer than {replicas} "
                "members of the NATS cluster are running. Bring the missing members back, or "
                "set NATS_STREAM_REPLICAS to at most the number of members."
            ) from exc
        raise
