"""Pull requests to a durable JetStream consumer, one at a time, each message handed over at once.

nats-py's ``fetch`` sends a ``no_wait`` probe and then a lingering request on every call, and
returns only when its batch is full or expired: a consumer calling it in a loop sends about two
pull requests per message at a moderate rate, each costing nats-server a request to parse and
queue. Here one lingering request asks for every free handler slot, and its messages are
dispatched as they arrive; the next request goes out when this one is filled or expires.

A request the server no longer knows (it restarted, or the connection was replaced) ends at its
local deadline, a little after its expiry, so a lost reply never stalls the consumer.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

STATUS_HEADER = "Status"
_IDLE_HEARTBEAT = "100"
_END_OF_REQUEST = frozenset({"404", "408"})  # no messages (no_wait), request expired
_LATE_REPLY_GRACE_SECONDS = 1.0


class PullRequestError(RuntimeError):
    """JetStream refused a pull request (the consumer was deleted, its leader changed, ...)."""


class PullRequests:
    """Pull requests to ``durable`` on ``stream``, answered on an inbox of this client."""

    def __init__(
        self,
        nc: Client,
        stream: str,
        durable: str,
        *,
        expires_seconds: float = 1.0,
        api_prefix: str = "$JS.API",
    ) -> None:
        self._nc = nc
        self._next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._expires = expires_seconds
        self._inbox = nc.new_inbox()
        self._sub: NatsSubscription | None = None

    async def open(self) -> None:
        """Subscribe to the inbox the server delivers to."""
        self._sub = await self._nc.subscribe(self._inbox)

    async def close(self) -> None:
        """Stop listening; messages delivered but not handed over are redelivered after the
        ack wait."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def pull(self, batch: int) -> AsyncIterator[Msg]:
        """Ask for up to ``batch`` messages and yield each as it arrives, until the request is
        filled, expires, or is lost."""
        if self._sub is None:
            raise RuntimeError("PullRequests.open() was not called")
        request = {"batch": batch, "expires": int(self._expires * 1_000_000_000)}
        await self._nc.publish(self._next_subject, json.dumps(request).encode(), reply=self._inbox)
        deadline = time.monotonic() + self._expires + _LATE_REPLY_GRACE_SECONDS
        remaining = batch
        while remaining > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return  # the request was lost with its server or connection
            try:
                msg = await self._sub.next_msg(timeout=left)
            except TimeoutError:
                return
            status = msg.headers.get(STATUS_HEADER) if msg.headers and not msg.data else None
            if status is None:
                remaining -= 1
                yield msg
            elif status in _END_OF_REQUEST:
                return
            elif status != _IDLE_HEARTBEAT:
                description = (msg.headers or {}).get("Description", "")
                raise PullRequestError(
                    f"JetStream refused the pull request on {self._next_subject}: "
                    f"{status} {description}".rstrip()
                )
