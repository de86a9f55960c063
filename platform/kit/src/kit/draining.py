"""Connection draining before shutdown: the pod is told it will stop, some seconds before SIGTERM.

Kubernetes removes a terminating pod from the Service's endpoints while its preStop hook runs,
but clients keep their pooled keep-alive connections to it (the gateway's upstream pools, a
client's connection through a NodePort). If the process only learns of the end at SIGTERM, it
closes those idle connections while a client may be sending a request on one: the request
fails (a POST is not retried). So the preStop hook (``python -m kit.prestop``) signals the
process first (SIGUSR1): from then on every response says ``Connection: close`` and /readyz
answers 503, and by the time SIGTERM arrives no client holds a connection to reuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.prestop import DRAIN_SIGNAL

log = logging.getLogger(__name__)


class Drain:
    """Whether the process is draining (about to stop), and since when."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def active(self) -> bool:
        """True once draining began."""
        return self.since is not None

    def begin(self) -> None:
        """Start draining (idempotent): close connections after each response, not ready."""
        if self.since is None:
            self.since = time.monotonic()
            log.info("draining: closing client connections after each response before shutdown")

    async def check(self) -> None:
        """A readiness check that fails while draining."""
        if self.active:
            raise ConnectionAbortedError("draining before shutdown")

    def listen(self) -> None:
        """Begin draining on DRAIN_SIGNAL (from the preStop hook); inside the running loop."""
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(DRAIN_SIGNAL, self.begin)

    def stop_listening(self) -> None:
        """Remove the signal handler again."""
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(DRAIN_SIGNAL)


class CloseConnections:
    """ASGI middleware: while draining, every HTTP response carries ``Connection: close``, so
    the server closes the connection after it and the client opens its next one elsewhere.

    It also closes a keep-alive connection once it is ``max_age_seconds`` old (0: never), after
    the response in flight: a client's pool (the gateway's upstream connections) otherwise stays
    on the pods it first reached, and a pod that joins the Service later (a scale-up, a canary)
    would get no share of its requests until something made the client reconnect.
    """

    def __init__(self, app: ASGIApp, drain: Drain, max_age_seconds: float = 0.0) -> None:
        self.app = app
        self.drain = drain
        self.max_age = max_age_seconds
        # First request seen per connection (the client's address and port name it).
        self._opened: dict[tuple[str, int], float] = {}

    def _too_old(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not self.max_age or not client:
            return False
        key, now = (str(client[0]), int(client[1])), time.monotonic()
        opened = self._opened.setdefault(key, now)
        if now - opened < self.max_age:
            return False
        del self._opened[key]
        if len(self._opened) > 4096:  # connections the clients closed themselves
            self._opened = {k: t for k, t in self._opened.items() if now - t < 2 * self.max_age}
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.drain.active or self._too_old(scope)):
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)
