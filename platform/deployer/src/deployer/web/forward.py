"""The API and the dashboard from any replica: a standby forwards them to the leader.

Only the leader holds the lanes, approvals and canaries in memory, so a standby replica passes
each API or dashboard request on to it (the address the leader advertises in its lease) and
returns the answer as it came. The event stream is served where it arrives (every replica
subscribes to the deploy events), as are health, readiness and metrics.
"""

from __future__ import annotations

from typing import Protocol

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from deployer.ha.leadership import Leadership
from kit.problems import problem_response

FORWARDED_BY = "x-flotilla-forwarded-by"
# Served by whichever replica the request reaches.
LOCAL_PATHS = frozenset({"/api/events", "/dashboard.js"})
FORWARDED_PREFIXES = ("/api/", "/fragments/", "/deployments/")
# Hop-by-hop headers (RFC 9110, section 7.6.1) and what httpx sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
RETRY_AFTER_SECONDS = 2


class Replicas(Protocol):
    """What the forwarding needs of the deployer service."""

    def leadership(self) -> Leadership | None:
        """Who leads (None until the lease book is open)."""


def forwarded(path: str) -> bool:
    """Whether a request for ``path`` must be answered by the leader."""
    if path in LOCAL_PATHS:
        return False
    return path == "/" or path.startswith(FORWARDED_PREFIXES)


class LeaderForwarding:
    """ASGI middleware: on a standby replica, API and dashboard requests go to the leader."""

    def __init__(self, app: ASGIApp, replicas: Replicas, timeout_seconds: float = 30.0) -> None:
        self._app = app
        self._replicas = replicas
        self._timeout = timeout_seconds
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not forwarded(scope["path"]):
            await self._app(scope, receive, send)
            return
        leadership = self._replicas.leadership()
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        if leadership is None or leadership.leading or FORWARDED_BY in headers:
            await self._app(scope, receive, send)
            return
        leader = await leadership.leader()
        if leader is None or not leader.url or leader.replica == leadership.me.replica:
            who = (
                f"replica {leader.replica} leads but advertises no address"
                if leader
                else (
                    "no replica leads right now (a take-over after a replica was lost takes up to "
                    "the lease time)"
                )
            )
            await _problem(
                scope, receive, send, f"This deployer replica stands by and {who}: retry shortly."
            )
            return
        body = await _body(receive)
        try:
            response = await self._forward(scope, body, leader.url, leadership.me.replica)
        except httpx.HTTPError as exc:
            await _problem(
                scope,
                receive,
                send,
                f"This deployer replica stands by and could not reach the leader "
                f"({leader.replica} at {leader.url}): {exc!r}. Retry shortly.",
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in response.headers.multi_items()
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"
                ]
                + [(b"content-length", str(len(response.content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    async def _forward(self, scope: Scope, body: bytes, url: str, me: str) -> httpx.Response:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in HOP_BY_HOP
        ]
        headers.append((FORWARDED_BY, me))
        query = scope.get("query_string", b"").decode("latin-1")
        return await self._client.request(
            scope["method"],
            f"{url}{scope['path']}" + (f"?{query}" if query else ""),
            headers=headers,
            content=body,
        )


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _problem(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
    response = problem_response(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    await response(scope, receive, send)
