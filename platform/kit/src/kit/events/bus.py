"""The connection to NATS, and publishing CloudEvents to JetStream exactly once per event id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import defaultdict
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError
from opentelemetry.trace import SpanKind

from kit.events.envelope import CloudEvent
from kit.events.streams import StreamSpec, ensure_stream
from kit.metrics import EVENTS_PUBLISHED
from kit.settings import NatsSettings
from kit.tracing import extract_trace_context, inject_trace_headers, tracer

log = logging.getLogger(__name__)

# Seconds between the tries of a publish that found no stream answering (0.75 s in all).
NO_RESPONDER_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4)
T = TypeVar("T")
MSG_ID_HEADER = "Nats-Msg-Id"
_DENIED_PUBLISH = re.compile(r'permissions violation for publish to "([^"]+)"', re.IGNORECASE)


class PublishDeniedError(PermissionError):
    """NATS refused a publish because this service's user may not use the subject."""


class NotConnectedError(ConnectionError):
    """The bus has no NATS connection yet (or it was closed)."""


class EventBus:
    """One NATS connection per process: provisioning, publishing and the JetStream context."""

    def __init__(self, settings: NatsSettings, client_name: str) -> None:
        self._settings = settings
        self._client_name = client_name
        self._nc: Client | None = None
        self._denials: defaultdict[str, list[asyncio.Future[str]]] = defaultdict(list)
        self._connected = asyncio.Event()

    @property
    def is_connected(self) -> bool:
        """True while the client holds a live connection to a server."""
        return self._nc is not None and self._nc.is_connected

    @property
    def stream_replicas(self) -> int:
        """The copies of each stream and key-value bucket this process creates
        (``NATS_STREAM_REPLICAS``)."""
        return self._settings.stream_replicas

    @property
    def nc(self) -> Client:
        """The underlying nats-py client; raises when not connected yet."""
        if self._nc is None:
            raise NotConnectedError(f"not connected to NATS at {self._settings.url} yet")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        """A JetStream context on the live connection."""
        return self.nc.jetstream(timeout=self._settings.request_timeout_seconds)

    async def connect(self) -> None:
        """Connect once; nats-py then reconnects on its own for the life of the process."""
        password = self._settings.password.get_secret_value() if self._settings.password else None
        self._nc = await nats.connect(
            servers=self._settings.servers,
            name=self._client_name,
            user=self._settings.user,
            password=password,
            user_credentials=str(self._settings.creds_file) if self._settings.creds_file else None,
            connect_timeout=self._settings.connect_timeout_seconds,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        self._connected.set()
        log.info("connected to NATS", extra={"nats_url": self._settings.url})

    async def connect_with_retry(self, stop: asyncio.Event, delay_seconds: float = 1.0) -> bool:
        """Keep trying to connect until it works (True) or ``stop`` is set (False)."""
        attempt = 0
        while not stop.is_set():
            attempt += 1
            try:
                await self.connect()
                return True
            except Exception as exc:  # nats-py raises several unrelated types here
                if attempt == 1 or attempt % 30 == 0:
                    log.warning(
                        "NATS is not reachable yet; retrying",
                        extra={"nats_url": self._settings.url, "error": repr(exc)},
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay_seconds)
        return False

    async def wait_connected(self) -> None:
        """Wait until the first connection has been made."""
        await self._connected.wait()

    async def ensure_streams(self, specs: Iterable[StreamSpec]) -> None:
        """Create or update every stream in ``specs`` with ``stream_replicas`` copies;
        idempotent."""
        for spec in specs:
            await self._unless_denied(
                f"$JS.API.STREAM.CREATE.{spec.name}",
                ensure_stream(self.js, spec, self.stream_replicas),
            )

    async def publish(
        self,
        subject: str,
        event: CloudEvent,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> PubAck:
        """Publish ``event`` on ``subject`` and wait for JetStream to store it.

        The event id is the ``Nats-Msg-Id``, so a retried publish inside the stream's duplicate
        window is stored once. Trace context is the caller's ``traceparent`` header when given,
        else the current span's.
        """
        msg_headers = dict(headers or {})
        parent = extract_trace_context(msg_headers) if "traceparent" in msg_headers else None
        with tracer().start_as_current_span(
            f"publish {subject}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "nats", "messaging.destination.name": subject},
        ):
            inject_trace_headers(msg_headers)
            msg_headers[MSG_ID_HEADER] = event.id
            msg_headers["Content-Type"] = "application/cloudevents+json"
            try:
                ack = await self._publish_or_denied(subject, event.to_bytes(), msg_headers, timeout)
            except Exception:
                EVENTS_PUBLISHED.labels(event.type, "error").inc()
                raise
            EVENTS_PUBLISHED.labels(event.type, "duplicate" if ack.duplicate else "stored").inc()
            return ack

    async def _publish_or_denied(
        self, subject: str, payload: bytes, headers: dict[str, str], timeout: float | None
    ) -> PubAck:
        # In a NATS cluster a stream just created (or whose leader just moved) can have no
        # responder for a moment, until its interest reaches the server this client is on. The
        # message id makes a repeat safe; a stream that really is missing still fails, later.
        for delay in (*NO_RESPONDER_RETRY_DELAYS, None):
            try:
                return await self._unless_denied(
                    subject, self.js.publish(subject, payload, headers=headers, timeout=timeout)
                )
            except NoStreamResponseError:
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last try returns or raises")

    async def _unless_denied(self, subject: str, request: Coroutine[Any, Any, T]) -> T:
        # A denied publish gets no reply: NATS reports it asynchronously on the connection, so
        # race the request against that report instead of waiting for the timeout.
        # nats-py lower-cases the server's error text, so waiters are keyed by the lower-cased
        # subject.
        key = subject.lower()
        denied: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._denials[key].append(denied)
        pending = asyncio.ensure_future(request)
        either: list[asyncio.Future[Any]] = [pending, denied]
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if denied.done() and not denied.cancelled():
                pending.cancel()
                raise PublishDeniedError(
                    f"NATS denied publishing to {subject!r} for user {self._settings.user!r}: "
                    f"{denied.result()}. Grant the subject to this user in the NATS config, "
                    "or use a subject it owns."
                )
            return await pending
        finally:
            self._denials[key].remove(denied)
            if not self._denials[key]:
                del self._denials[key]
            if not denied.done():
                denied.cancel()

    async def _on_error(self, exc: Exception) -> None:
        match = _DENIED_PUBLISH.search(str(exc))
        if match:
            for waiter in self._denials.get(match.group(1).lower(), []):
                if not waiter.done():
                    waiter.set_result(str(exc))
        # Before the first connection, connect_with_retry reports failures once in a while.
        level = logging.WARNING if self._connected.is_set() else logging.DEBUG
        log.log(level, "NATS error", extra={"error": str(exc)})

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")

    async def drain(self) -> None:
        """Flush pending publishes and acks, then close the connection."""
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()
            except Exception as exc:  # draining a broken connection must not block shutdown
                log.warning("NATS drain failed; closing", extra={"error": repr(exc)})
                await self._nc.close()
