"""Limits at the edge of every service: how big a request's head may be, and how slowly it may come.

uvicorn (with httptools, what ``uvicorn[standard]`` runs) reads a request's head with no limit on
its size or its number of fields, and gives a client all the time it wants to send its head and
its body: one client could hold a connection open for ever (slow-loris) or make the process hold
megabytes of headers before the application ever sees them. The application cannot help: by the
time ASGI runs, the whole head has been read. So the limits are enforced here, in uvicorn's own
HTTP protocol (a subclass of its httptools one, passed to uvicorn as ``http=``), while the bytes
arrive:

- a head above ``max_header_bytes`` (its request line and header fields) or with more than
  ``max_headers`` fields: 431 (414 when the request target alone is too long), as soon as the
  limit is crossed - the rest is never read;
- a head not received within ``header_timeout`` of its first byte: 408;
- a body not received within ``body_timeout`` of the end of the head: 408 when no response has
  started (the application's receive() then reports a disconnect), else the connection closes;
- a connection with no request under way (new, or kept alive after a response) is closed
  silently after ``keepalive_timeout``: uvicorn's keep-alive timer, armed on a new connection
  too.

Each refusal closes the connection. Those the application never saw are counted in
``http_requests_refused_total``; a body timeout is counted by the application's request metrics
(kit.http_middleware) as a 408, and a client that hangs up before its response as a 499.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar, cast

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from kit.http_middleware import CLIENT_CLOSED_REQUEST, CONNECTION_ENDING
from kit.metrics import HTTP_REFUSED
from kit.problems import PROBLEM_MEDIA_TYPE
from kit.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeLimits:
    """The limits one server enforces on every connection (see the module's docstring)."""

    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_timeout: float
    keepalive_timeout: float

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> EdgeLimits:
        """The limits configured by ``SERVICE_*`` (kit.settings.ServiceSettings)."""
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            keepalive_timeout=settings.keepalive_timeout_seconds,
        )


class _RefusalError(Exception):
    """Raised from a parser callback to stop reading a request the server will not take."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


# Each header field costs its name, its value, ": " and CRLF on the wire.
FIELD_OVERHEAD = 4


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`EdgeLimits` enforced on each connection.

    Use :func:`limited_http_protocol` to get one bound to its limits.
    """

    limits: ClassVar[EdgeLimits]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.timeout_keep_alive = self.limits.keepalive_timeout  # type: ignore[assignment]
        # The one timer of a request under way: its head's, then its body's.
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = False  # a request began and its head is not complete
        self._body_pending = False  # a head is complete and its body is not
        self._head_bytes = 0  # the request line and fields parsed so far
        self._head_raw = 0  # the bytes received while the head was under way
        self._fields = 0
        self._completed = 0  # requests received in full on this connection
        self._refused = False  # answered and closing: whatever comes next is dropped

    # ---- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection; it is closed if no request starts within the keep-alive time."""
        super().connection_made(transport)
        self._idle()

    def connection_lost(self, exc: Exception | None) -> None:
        """Note on a request still unanswered that its client went away, then clean up."""
        self._cancel_deadline()
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            _scope_of(cycle).setdefault(CONNECTION_ENDING, CLIENT_CLOSED_REQUEST)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, refusing a head that grows too big; arm the body's timer."""
        if self._refused:
            return
        self._unset_keepalive_if_required()
        in_body = self._body_pending
        completed = self._completed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _RefusalError):
                self._refuse(error.__context__)
            else:
                self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                # The connection is the WebSocket protocol's from here: no timer of ours.
                self._cancel_deadline()
                self._body_pending = False
                self.handle_websocket_upgrade()
                return
            self._unsupported_upgrade_warning()  # served as plain HTTP, timed as such
        if self._in_head:
            # The whole chunk went into this head when it neither began inside a body nor
            # finished a request first (then the head started at its first byte).
            if not in_body and self._completed == completed:
                self._head_raw += len(data)
                if self._head_raw > self.limits.max_header_bytes:
                    self._refuse(self._head_too_large())
                    return
            # Armed once per head, when a chunk leaves it unfinished (most heads come whole).
            if self._deadline is None:
                self._arm(self.limits.header_timeout, self._head_timed_out)
        elif self._body_pending:
            if self._deadline is None and not self.pipeline:
                self._arm(self.limits.body_timeout, self._body_timed_out)
        else:
            self._idle()

    # ---- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request's first byte: its head is measured from here."""
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._head_raw = self._fields = 0

    def on_url(self, url: bytes) -> None:
        """A piece of the request target: 414 once the target alone is over the head limit."""
        super().on_url(url)
        self._head_bytes += len(url)
        if len(self.url) > self.limits.max_header_bytes:
            raise _RefusalError(
                414,
                "url_too_long",
                f"the request target is longer than {self.limits.max_header_bytes} bytes",
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header field: 431 once there are too many or the head is too big."""
        self._fields += 1
        self._head_bytes += len(name) + len(value) + FIELD_OVERHEAD
        if self._fields > self.limits.max_headers:
            raise _RefusalError(
                431,
                "too_many_headers",
                f"the request has more than {self.limits.max_headers} header fields",
            )
        if self._head_bytes > self.limits.max_header_bytes:
            raise self._head_too_large()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is in: stop its timer; the application starts."""
        self._in_head = False
        self._body_pending = True
        self._cancel_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The body is in: stop its timer."""
        self._body_pending = False
        self._completed += 1
        self._cancel_deadline()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """A response was sent; a pipelined request that starts now gets its body's timer."""
        super().on_response_complete()
        if (
            self._body_pending
            and self._deadline is None
            and not self.pipeline
            and not self.transport.is_closing()
        ):
            self._arm(self.limits.body_timeout, self._body_timed_out)

    # ---- timers -------------------------------------------------------------------------------

    def _arm(self, seconds: float, then: Callable[[], None]) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(seconds, then)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _idle(self) -> None:
        """Close the connection after the keep-alive time unless a request starts (when none is
        under way)."""
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.timeout_keep_alive_task is None and self._deadline is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _head_timed_out(self) -> None:
        self._deadline = None
        self._refuse(
            _RefusalError(
                408,
                "header_timeout",
                f"the request's head did not arrive within {self.limits.header_timeout:g} s",
            )
        )

    def _body_timed_out(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        if cycle.waiting_for_100_continue and not cycle.response_started:
            # The client waits for "100 Continue", sent when the application asks for the body.
            self._arm(self.limits.body_timeout, self._body_timed_out)
            return
        if not self._abandon(cycle, 408):
            return
        detail = f"the request's body did not arrive within {self.limits.body_timeout:g} s"
        log.info(
            "request refused",
            extra={"status": 408, "reason": "body_timeout", "client": self._client()},
        )
        self._answer(408, detail)

    # ---- answers ------------------------------------------------------------------------------

    def _head_too_large(self) -> _RefusalError:
        return _RefusalError(
            431,
            "header_too_large",
            f"the request's head is larger than {self.limits.max_header_bytes} bytes",
        )

    def _refuse(self, refusal: _RefusalError) -> None:
        """Answer a request refused before the application saw it, and close the connection."""
        HTTP_REFUSED.labels(str(refusal.status), refusal.reason).inc()
        log.info(
            "request refused",
            extra={"status": refusal.status, "reason": refusal.reason, "client": self._client()},
        )
        if self.cycle is not None and not self.cycle.response_complete:
            # A response to an earlier request is on its way: let it finish, then close.
            self.cycle.keep_alive = False
            self._refused = True
            self._cancel_deadline()
            return
        self._answer(refusal.status, refusal.detail)

    def _bad_request(self) -> None:
        """uvicorn's 400 for what the parser cannot read; a body malformed while the application
        runs ends its request as a 400 (the application sees a disconnect)."""
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self._refused = True
        self._cancel_deadline()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not self._abandon(cycle, 400):
            return
        self.send_400_response(message)

    def _abandon(self, cycle: RequestResponseCycle, status: int) -> bool:
        """End the application's side of ``cycle``: its receive() reports a disconnect and its
        sends are dropped. Once its response has started the connection just closes (False);
        otherwise the request is noted as ended with ``status``, to be answered (True)."""
        cycle.disconnected = True
        cycle.message_event.set()
        if cycle.response_started:
            self._close()
            return False
        _scope_of(cycle)[CONNECTION_ENDING] = status
        return True

    def _answer(self, status: int, detail: str) -> None:
        """Write a problem+json response with ``Connection: close`` and close."""
        phrase = HTTPStatus(status).phrase
        body = json.dumps(
            {"type": "about:blank", "title": phrase, "status": status, "detail": detail}
        ).encode()
        head = [f"HTTP/1.1 {status} {phrase}\r\n".encode()]
        head.extend(
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        )
        head.append(f"content-type: {PROBLEM_MEDIA_TYPE}\r\n".encode())
        head.append(f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode())
        self.transport.write(b"".join(head) + body)
        self._close()

    def _close(self) -> None:
        self._refused = True
        self._cancel_deadline()
        self._unset_keepalive_if_required()
        self.transport.close()

    def _client(self) -> str | None:
        return f"{self.client[0]}:{self.client[1]}" if self.client else None


def _scope_of(cycle: RequestResponseCycle) -> dict[str, object]:
    """The request's ASGI scope, where the application's middleware reads how it ended."""
    return cast("dict[str, object]", cycle.scope)


def limited_http_protocol(limits: EdgeLimits) -> type[LimitedHttpToolsProtocol]:
    """The HTTP protocol class to pass to uvicorn (``http=``) that enforces ``limits``."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
