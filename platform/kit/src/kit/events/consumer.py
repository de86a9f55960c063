"""Durable pull consumers: explicit ack, bounded concurrency, backoff, and dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry.trace import SpanKind

from kit.db import Database
from kit.events.bus import EventBus
from kit.events.deadletter import DeadLetterReason, dead_letter
from kit.events.envelope import CloudEvent, InvalidEventError
from kit.events.errors import PermanentEventError
from kit.events.outages import is_outage
from kit.events.outbox import Outbox
from kit.events.pulls import PullRequests
from kit.events.streams import StreamSpec
from kit.metrics import (
    EVENT_HANDLER_LATENCY,
    EVENT_REDELIVERIES,
    EVENTS_CONSUMED,
)
from kit.tracing import extract_trace_context, tracer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandlerDependencies:
    """What the chassis hands a service's event handlers: its database and its outbox.

    Either is ``None`` when the service declared none (``ServiceSpec.migrations``/``outbox``).
    """

    database: Database | None = None
    outbox: Outbox | None = None


@dataclass(frozen=True)
class Delivery:
    """What a handler knows about the delivery it is processing, and what it may use."""

    consumer: str
    subject: str
    attempt: int
    stream_sequence: int
    _msg: Msg = field(repr=False)
    _dependencies: HandlerDependencies = field(default_factory=HandlerDependencies, repr=False)

    @property
    def database(self) -> Database:
        """The service's database; a clear error when the service declared none."""
        if self._dependencies.database is None:
            raise RuntimeError(f"{self.consumer}: the service declared no database")
        return self._dependencies.database

    @property
    def outbox(self) -> Outbox:
        """The service's outbox, to publish in the handler's transaction; an error without one."""
        if self._dependencies.outbox is None:
            raise RuntimeError(f"{self.consumer}: the service declared no outbox")
        return self._dependencies.outbox

    async def in_progress(self) -> None:
        """Tell JetStream the handler is still working, resetting the ack timer."""
        await self._msg.in_progress()


Handler = Callable[[CloudEvent, Delivery], Awaitable[None]]
InvalidEventHandler = Callable[[bytes, str, Delivery], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """A durable consumer bound to a handler.

    ``backoff_seconds[i]`` is the delay before attempt ``i + 2``; the last value repeats.
    After ``max_deliver`` failed attempts the event goes to the dead-letter stream. A failure
    that is a dependency's outage (:mod:`kit.events.outages`) is no attempt: the consumer runs the
    handler again, holding the message, until the dependency is back.
    ``ack_wait_seconds`` is short because a running handler keeps its message with a heartbeat
    (``in_progress``): the ack wait only decides how soon a crashed process's messages go to
    another one.
    """

    durable: str
    stream: StreamSpec
    subjects: tuple[str, ...]
    handler: Handler
    max_deliver: int = 5
    ack_wait_seconds: float = 5.0
    concurrency: int = 8
    backoff_seconds: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    # Called (instead of dead-lettering) with the raw body and the parse error of a message
    # that is not a CloudEvent, for consumers that must answer bad input themselves.
    on_invalid_event: InvalidEventHandler | None = None

    def backoff(self, attempt: int) -> float:
        """Delay before redelivering after failed attempt number ``attempt`` (1-based)."""
        return self.backoff_seconds[min(attempt, len(self.backoff_seconds)) - 1]

    def consumer_config(self) -> ConsumerConfig:
        """The JetStream consumer; max_deliver is enforced here, not by the server.

        The server never gives up on a message; the consumer dead-letters it itself, so an
        event whose handler kept crashing the process is recorded rather than dropped.
        """
        return ConsumerConfig(
            durable_name=self.durable,
            name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_seconds,
            max_deliver=-1,
            max_ack_pending=self.concurrency * 4,
            filter_subjects=list(self.subjects),
        )


class _Heartbeat:
    """Tells JetStream every ``interval`` that ``msg``'s handler is still working.

    A timer rather than a task: most handlers end before the first beat, and then cost no task.
    """

    def __init__(self, msg: Msg, interval: float) -> None:
        self._msg = msg
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(interval, self._beat)
        # The loop keeps only weak references to tasks: a beat being sent is held here.
        self._sending: set[asyncio.Task[None]] = set()

    def _beat(self) -> None:
        sending = self._loop.create_task(self._send())
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)
        self._timer = self._loop.call_later(self._interval, self._beat)

    async def _send(self) -> None:
        try:
            await self._msg.in_progress()
        except Exception as exc:  # NATS away: the next beat tries again
            log.debug("heartbeat failed", extra={"error": repr(exc)})

    def stop(self) -> None:
        """No more beats (one being sent finishes)."""
        self._timer.cancel()


class Consumer:
    """Runs one Subscription: fetches, dispatches to the handler, acks, retries, dead-letters."""

    def __init__(
        self,
        bus: EventBus,
        subscription: Subscription,
        service: str,
        dependencies: HandlerDependencies | None = None,
    ) -> None:
        self._bus = bus
        self._sub = subscription
        self._service = service
        self._dependencies = dependencies or HandlerDependencies()
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._handled = 0  # deliveries whose handling ended (acked, retried or dead-lettered)

    async def start(self) -> None:
        """Create or update the durable consumer and start fetching; a no-op once running."""
        if self._loop_task is not None:
            return
        js = self._bus.js
        await js.add_consumer(self._sub.stream.name, config=self._sub.consumer_config())
        pulls = PullRequests(self._bus.nc, self._sub.stream.name, self._sub.durable)
        await pulls.open()
        self._loop_task = asyncio.create_task(self._fetch_loop(pulls), name=self._sub.durable)

    async def stop(self, timeout: float) -> None:
        """Stop fetching, then give in-flight handlers up to ``timeout`` seconds to finish."""
        self._stopping.set()
        if self._loop_task is not None:
            await self._loop_task
        in_flight = len(self._inflight)
        pending: set[asyncio.Task[None]] = set()
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=timeout)
            for task in pending:
                log.warning(
                    "handler did not finish before shutdown; it will be redelivered",
                    extra={"consumer": self._sub.durable},
                )
                task.cancel()
        # The counts show a graceful drain: what was in flight at SIGTERM finished, none was
        # left to be redelivered.
        log.info(
            "consumer drained",
            extra={
                "consumer": self._sub.durable,
                "handled": self._handled,
                "in_flight_at_stop": in_flight,
                "finished_while_draining": in_flight - len(pending),
                "left_for_redelivery": len(pending),
            },
        )

    async def _fetch_loop(self, pulls: PullRequests) -> None:
        while not self._stopping.is_set():
            free = self._sub.concurrency - len(self._inflight)
            if free <= 0:
                await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                async for msg in pulls.pull(free):
                    task = asyncio.create_task(self._handle(msg))
                    self._inflight.add(task)
                    task.add_done_callback(self._finished)
            except (ConnectionClosedError, ConnectionError) as exc:
                log.warning("fetch failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(0.5)
            except Exception as exc:  # e.g. the consumer vanished while NATS restarted
                log.warning("fetch failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(0.5)
        await pulls.close()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled():
            self._handled += 1

    async def _handle(self, msg: Msg) -> None:
        metadata = msg.metadata
        attempt = metadata.num_delivered
        if attempt > 1:
            EVENT_REDELIVERIES.labels(self._sub.durable).inc()
        try:
            event = CloudEvent.from_bytes(msg.data)
        except InvalidEventError as exc:
            if self._sub.on_invalid_event is None:
                await self._dead_letter(msg, None, "invalid_event", str(exc), attempt)
                return
            await self._run_invalid_handler(msg, str(exc), attempt)
            return
        if attempt > self._sub.max_deliver:
            await self._dead_letter(
                msg,
                event,
                "max_deliver_exceeded",
                f"delivered {attempt} times without an ack (the handler crashed the process "
                "or exceeded the ack wait)",
                attempt,
            )
            return
        delivery = self._delivery(msg, attempt)
        with tracer().start_as_current_span(
            f"process {msg.subject}",
            context=extract_trace_context(msg.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.message.id": event.id,
                "messaging.consumer.group.name": self._sub.durable,
            },
        ):
            await self._run_handler(msg, event, delivery)

    async def _run_invalid_handler(self, msg: Msg, error: str, attempt: int) -> None:
        assert self._sub.on_invalid_event is not None
        delivery = self._delivery(msg, attempt)
        try:
            await self._sub.on_invalid_event(msg.data, error, delivery)
        except Exception as exc:
            if attempt >= self._sub.max_deliver:
                await self._dead_letter(
                    msg, None, "invalid_event", f"{error}; then {exc!r}", attempt
                )
            else:
                await msg.nak(delay=self._sub.backoff(attempt))
            return
        await msg.ack()
        EVENTS_CONSUMED.labels(self._sub.durable, "<invalid>", "ok").inc()

    def _delivery(self, msg: Msg, attempt: int) -> Delivery:
        return Delivery(
            consumer=self._sub.durable,
            subject=msg.subject,
            attempt=attempt,
            stream_sequence=msg.metadata.sequence.stream,
            _msg=msg,
            _dependencies=self._dependencies,
        )

    async def _run_handler(self, msg: Msg, event: CloudEvent, delivery: Delivery) -> None:
        heartbeat = _Heartbeat(msg, max(self._sub.ack_wait_seconds / 3, 0.1))
        started = time.perf_counter()
        try:
            await self._through_outages(event, delivery)
        except PermanentEventError as exc:
            await self._dead_letter(msg, event, "permanent_error", str(exc), delivery.attempt)
            return
        except Exception as exc:
            await self._after_failure(msg, event, exc, delivery.attempt)
            return
        finally:
            heartbeat.stop()
            EVENT_HANDLER_LATENCY.labels(self._sub.durable, event.type).observe(
                time.perf_counter() - started
            )
        await msg.ack()
        EVENTS_CONSUMED.labels(self._sub.durable, event.type, "ok").inc()

    async def _through_outages(self, event: CloudEvent, delivery: Delivery) -> None:
        """Run the handler; while it fails because a dependency is unreachable (its database
        restarting, a NATS member lost), run it again here, holding the message (the heartbeat
        goes on) rather than failing the attempt: an outage can outlast the whole backoff, and
        must not dead-letter an event that is fine. At shutdown the last failure stands."""
        waited = 0
        while True:
            try:
                await self._sub.handler(event, delivery)
                return
            except Exception as exc:
                if not is_outage(exc) or self._stopping.is_set():
                    raise
                waited += 1
                delay = self._sub.backoff(waited)
                log.warning(
                    "a dependency is unavailable; the handler runs again once it is back",
                    extra={
                        "consumer": self._sub.durable,
                        "event_id": event.id,
                        "retry_in_seconds": delay,
                        "error": f"{type(exc).__name__}: {exc}",
                    },
                )
                EVENTS_CONSUMED.labels(self._sub.durable, event.type, "outage").inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)

    async def _after_failure(
        self, msg: Msg, event: CloudEvent, exc: Exception, attempt: int
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if attempt >= self._sub.max_deliver:
            await self._dead_letter(msg, event, "handler_failed", error, attempt)
            return
        delay = self._sub.backoff(attempt)
        log.warning(
            "handler failed; will retry",
            extra={
                "consumer": self._sub.durable,
                "event_id": event.id,
                "attempt": attempt,
                "retry_in_seconds": delay,
                "error": error,
            },
        )
        EVENTS_CONSUMED.labels(self._sub.durable, event.type, "retry").inc()
        await msg.nak(delay=delay)

    async def _dead_letter(
        self,
        msg: Msg,
        event: CloudEvent | None,
        reason: DeadLetterReason,
        error: str,
        attempt: int,
    ) -> None:
        try:
            await dead_letter(self._bus, self._service, self._sub.durable, msg, reason, error)
        except Exception as exc:
            # Never drop a message we could not record: let JetStream deliver it again later.
            log.error(
                "could not write dead letter; will retry",
                extra={"consumer": self._sub.durable, "error": repr(exc)},
            )
            await msg.nak(delay=self._sub.backoff(attempt))
            return
        await msg.term()
        EVENTS_CONSUMED.labels(
            self._sub.durable, event.type if event else "<invalid>", "dead_lettered"
        ).inc()
