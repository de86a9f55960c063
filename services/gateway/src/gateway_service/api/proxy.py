"""Forwarding one request: authenticate, rate-limit, then pass it on with vouched identity.

The hot path copies the client's headers once, minus the hop-by-hop ones and those the gateway
sets itself, and passes bodies through as bytes (never decoded or re-encoded).
"""

from __future__ import annotations

import math
import time
import uuid

import aiohttp
from opentelemetry import propagate
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from gateway_service.domain.errors import (
    BodyTooLargeError,
    RateLimitedError,
    TokenRejectedError,
    UnsafePathError,
)
from gateway_service.domain.ratelimit import TokenBuckets
from gateway_service.domain.tokens import TokenVerifier
from gateway_service.infra.jwks import JwksKeys
from gateway_service.infra.upstreams import Upstream, UpstreamResponse
from gateway_service.settings import GatewaySettings
from kit.identity import sign_identity
from kit.logs import request_id_var

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway (or the HTTP client) for each forwarded request, never copied from the
# client: above all the identity headers, which only the gateway may vouch for.
SET_BY_GATEWAY = frozenset(
    {
        b"host",
        b"content-length",
        b"expect",
        b"authorization",
        b"x-flotilla-user",
        b"x-flotilla-identity",
        b"x-request-id",
        b"traceparent",
        b"tracestate",
        b"baggage",
    }
)
NOT_FORWARDED = HOP_BY_HOP | SET_BY_GATEWAY
# The gateway's server adds its own date, server and request id headers.
NOT_RETURNED = HOP_BY_HOP | {b"content-length", b"date", b"server", b"x-request-id"}
API_PREFIX_LENGTH = len("/api")
# How to authenticate at all.
HOW_TO_AUTHENTICATE = "send 'Authorization: Bearer <token>' with a token from POST /api/auth/token"


class ProxiedResponse(Response):
    """An upstream's answer, passed on unchanged but for hop-by-hop headers."""

    def __init__(self, answer: UpstreamResponse) -> None:
        super().__init__(content=answer.body, status_code=answer.status)
        self.raw_headers = [
            *(
                (name.lower(), value)
                for name, value in answer.headers
                if name.lower() not in NOT_RETURNED
            ),
            *self.raw_headers,
        ]


class Gateway:
    """The gateway while it serves: upstream pools, the key cache, the verifier, the buckets."""

    def __init__(self, settings: GatewaySettings, identity_secret: bytes) -> None:
        self.settings = settings
        self._identity_secret = identity_secret
        self.upstreams = {
            "auth": Upstream("auth", settings.auth_url, settings),
            "order": Upstream("order", settings.order_url, settings),
            "payment": Upstream("payment", settings.payment_url, settings),
        }
        self._jwks_session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=settings.upstream_connect_timeout_seconds,
                sock_read=settings.upstream_read_timeout_seconds,
            )
        )
        self.keys = JwksKeys(
            self._jwks_session,
            settings.jwks_url,
            min_refresh_interval=settings.jwks_refresh_min_interval_seconds,
            max_age=settings.jwks_max_age_seconds,
        )
        self._verifier = TokenVerifier(
            self.keys,
            issuer=settings.issuer,
            audience=settings.audience,
            leeway=settings.clock_skew_seconds,
        )
        self._buckets = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
        for upstream in self.upstreams.values():
            upstream.open()

    async def close(self) -> None:
        """Close every connection pool."""
        for upstream in self.upstreams.values():
            await upstream.close()
        await self._jwks_session.close()

    async def forward(self, request: Request, upstream: Upstream, *, public: bool) -> Response:
        """Forward ``request`` to ``upstream`` (raises GatewayError when it must not or cannot)."""
        scope = request.scope
        headers: list[tuple[str, str]] = []
        authorization = content_length = connection = chunked = None
        for name, value in scope["headers"]:
            if name in NOT_FORWARDED:
                if name == b"authorization":
                    authorization = value
                elif name == b"content-length":
                    content_length = value
                elif name == b"connection":
                    connection = value
                elif name == b"transfer-encoding":
                    chunked = value
                continue
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        if connection is not None:
            headers = _without_connection_options(headers, connection)
        path: str = scope["path"]
        if "/." in path and any(segment in (".", "..") for segment in path.split("/")):
            raise UnsafePathError(
                "the path must not contain '.' or '..' segments: send the resolved path"
            )

        user_id = None if public else await self._verifier.verify(_bearer_token(authorization))
        self._rate_limit(user_id, scope)
        # Without Content-Length or Transfer-Encoding a request has no body (RFC 9112 6.3).
        body = (
            b""
            if content_length is None and chunked is None
            else await _read_body(request, content_length, self.settings.max_body_bytes)
        )

        headers.append(("x-request-id", request_id_var.get() or uuid.uuid4().hex))
        if user_id is not None:
            headers.extend(sign_identity(self._identity_secret, user_id).items())
        trace_headers: dict[str, str] = {}
        propagate.inject(trace_headers)
        headers.extend(trace_headers.items())

        raw_path: bytes = scope.get("raw_path") or path.encode()
        target = raw_path[API_PREFIX_LENGTH:].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        answer = await upstream.send(scope["method"], target, headers, body)
        return ProxiedResponse(answer)

    def _rate_limit(self, user_id: str | None, scope: Scope) -> None:
        if user_id is not None:
            client = "user:" + user_id
        else:
            peer = scope.get("client")
            client = "ip:" + (str(peer[0]) if peer else "unknown")
        wait = self._buckets.take(client, time.monotonic())
        if wait > 0:
            raise RateLimitedError(max(1, math.ceil(wait)), self._buckets.rate, self._buckets.burst)


def _bearer_token(authorization: bytes | None) -> str:
    if authorization is None:
        raise TokenRejectedError("no bearer token", HOW_TO_AUTHENTICATE, missing=True)
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise TokenRejectedError(
            "the Authorization header is not a bearer token", HOW_TO_AUTHENTICATE
        )
    return token


def _without_connection_options(
    headers: list[tuple[str, str]], connection: bytes
) -> list[tuple[str, str]]:
    """Drop the headers that the Connection header declares hop-by-hop (RFC 9110 7.6.1)."""
    named = {option.strip().lower() for option in connection.decode("latin-1").split(",")}
    return [(name, value) for name, value in headers if name not in named]


async def _read_body(request: Request, content_length: bytes | None, limit: int) -> bytes:
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> BodyTooLargeError:
    return BodyTooLargeError(
        f"the request body is larger than {limit} bytes, the most the gateway forwards: "
        "send a smaller body"
    )
