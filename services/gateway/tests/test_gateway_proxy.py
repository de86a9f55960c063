"""The gateway in front of a real auth process and an echo upstream."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from yarl import URL

from devkit.localstack.process import ServiceProcess
from kit.identity import verify_identity

PASSWORD = "correct horse battery staple"
Mint = Callable[..., str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def echoed(gateway: ServiceProcess, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """What the echo upstream received for GET ``path`` through the gateway."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(URL(gateway.base_url + path, encoded=True), headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        body["response_headers"] = response.headers
        return body


async def test_register_sign_in_and_me_through_the_gateway(gateway: ServiceProcess) -> None:
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    async with aiohttp.ClientSession(gateway.base_url) as http:
        async with http.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD}
        ) as r:
            assert r.status == 201, await r.text()
            user = await r.json()
        form = {"grant_type": "password", "username": email, "password": PASSWORD}
        async with http.post("/api/auth/token", data=form) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["access_token"]
        async with http.get("/api/auth/me", headers=bearer(token)) as r:
            assert r.status == 200, await r.text()
            assert await r.json() == user
        async with http.get("/api/auth/jwks.json") as r:
            assert r.status == 200
            assert [key["kid"] for key in (await r.json())["keys"]]


async def test_identity_headers_are_signed_by_the_gateway_and_client_copies_dropped(
    gateway: ServiceProcess, mint: Mint, identity_secret: bytes
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    forged = {
        **bearer(mint(user)),
        "X-Flotilla-User": "admin",
        "X-Flotilla-Identity": "1.forged",
        "X-Custom": "kept",
    }
    received = await echoed(gateway, "/api/orders/o-1?expand=items&x=%2F", forged)
    headers = received["headers"]
    assert received["path"] == "/orders/o-1"
    assert received["query"] == "expand=items&x=%2F"
    assert headers["x-flotilla-user"] == [user]
    [signature] = headers["x-flotilla-identity"]
    assert verify_identity(identity_secret, user, signature)
    assert headers["x-custom"] == ["kept"]
    assert "authorization" not in headers  # the token stops at the gateway


async def test_request_id_and_trace_context_are_forwarded(
    gateway: ServiceProcess, mint: Mint
) -> None:
    trace_id = uuid.uuid4().hex
    sent = {
        **bearer(mint()),
        "X-Request-ID": "req-gateway-test-1",
        "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
    }
    received = await echoed(gateway, "/api/payments/p-1", sent)
    assert received["path"] == "/payments/p-1"
    assert received["headers"]["x-request-id"] == ["req-gateway-test-1"]
    assert received["response_headers"]["X-Request-ID"] == "req-gateway-test-1"
    [traceparent] = received["headers"]["traceparent"]
    assert traceparent.split("-")[1] == trace_id  # the same trace, continued by the gateway

    # Without one, the gateway makes the id, and upstream and client see the same.
    received = await echoed(gateway, "/api/orders", bearer(mint()))
    [request_id] = received["headers"]["x-request-id"]
    assert received["response_headers"]["X-Request-ID"] == request_id


@pytest.mark.parametrize("status", [418, 503])
async def test_upstream_errors_pass_through_unchanged(
    gateway: ServiceProcess, mint: Mint, status: int
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            gateway.base_url + f"/api/orders/status-{status}",
            headers={**bearer(mint()), "X-Test-Allow-5xx": "yes"},
        ) as response,
    ):
        assert response.status == status
        assert response.content_type == "application/problem+json"
        assert await response.read() == (
            b'{"title":"chosen by the test","status":%d,"from":"upstream"}' % status
        )
        assert response.headers["X-Upstream"] == "echo"
        assert response.headers["Set-Cookie"] == "upstream=1; Path=/"
        assert len(response.headers.getall("Server", [])) <= 1
        assert len(response.headers.getall("Date")) == 1


def hs256_with_public_key(key: Ed25519PrivateKey, kid: str) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the published public key."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
    claims = {"iss": "flotilla-auth", "aud": "flotilla-api", "sub": "admin", "iat": now}
    payload = b64(json.dumps({**claims, "exp": now + 300}).encode())
    public = key.public_key().public_bytes_raw()
    signature = hmac.new(b64(public).encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64(signature.digest())}"


BAD_TOKENS: dict[str, Callable[[Mint, Any], dict[str, str]]] = {
    "no token": lambda mint, stack: {},
    "not bearer": lambda mint, stack: {"Authorization": "Basic YWRhOnNlY3JldA=="},
    "malformed": lambda mint, stack: bearer("not.a.jwt"),
    "wrong audience": lambda mint, stack: bearer(mint(aud="another-api")),
    "wrong issuer": lambda mint, stack: bearer(mint(iss="someone-else")),
    "expired": lambda mint, stack: bearer(
        mint(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    ),
    "no subject": lambda mint, stack: bearer(mint(sub=None)),
    "no expiry": lambda mint, stack: bearer(mint(exp=None)),
    "alg none": lambda mint, stack: bearer(mint(key="", algorithm="none")),
    "hs256 with the public key": lambda mint, stack: bearer(
        hs256_with_public_key(stack.keys.key, stack.keys.kid)
    ),
    "unknown kid": lambda mint, stack: bearer(
        mint(key=Ed25519PrivateKey.generate(), headers={"kid": f"nope-{uuid.uuid4().hex}"})
    ),
    "another key under the real kid": lambda mint, stack: bearer(
        mint(key=Ed25519PrivateKey.generate())
    ),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_is_401_with_a_bearer_challenge(
    case: str, gateway: ServiceProcess, mint: Mint, stack: Any
) -> None:
    headers = BAD_TOKENS[case](mint, stack)
    async with (
        aiohttp.ClientSession() as http,
        http.get(gateway.base_url + "/api/orders/o-1", headers=headers) as response,
    ):
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        problem = await response.json()
        challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="flotilla"')
    assert ('error="invalid_token"' in challenge) == (case != "no token")
    assert "POST /api/auth/token" in problem["detail"]


async def test_slow_upstream_is_504_and_a_down_one_503(
    gateway: ServiceProcess, edge_gateway: ServiceProcess, mint: Mint
) -> None:
    async with aiohttp.ClientSession(headers=bearer(mint())) as http:
        # The upstream would answer after 5 s; the gateway gives up after 1.5 s.
        async with http.get(gateway.base_url + "/api/orders/slow?seconds=5") as r:
            assert r.status == 504
            assert (await r.json())["detail"] == (
                "the order service did not answer within 1.5 s; retry later"
            )
        began = time.monotonic()
        async with http.get(edge_gateway.base_url + "/api/orders/o-1") as r:
            assert r.status == 503
            assert r.content_type == "application/problem+json"
            assert (await r.json())["detail"] == "the order service is unavailable; retry later"
        # Three retries, 0.25 + 0.5 + 1 s apart, before the gateway gives up.
        assert time.monotonic() - began >= 1.75


def answer_once_after(port: int, delay: float, requests: list[bytes]) -> threading.Thread:
    """After ``delay`` s, listen on ``port``, answer one request 201 and stop listening."""

    def serve() -> None:
        time.sleep(delay)
        with socket.create_server(("127.0.0.1", port)) as listener:
            connection, _ = listener.accept()
            with connection:
                requests.append(connection.recv(65536))
                body = b'{"id":"o-late"}'
                connection.sendall(
                    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


async def test_a_refused_connection_is_retried_even_for_a_post(
    edge_gateway: ServiceProcess, down_order_port: int, mint: Mint
) -> None:
    # As when a Service's first pods became ready a moment before kube-proxy routed to them.
    requests: list[bytes] = []
    server = answer_once_after(down_order_port, 0.4, requests)
    async with (
        aiohttp.ClientSession(headers=bearer(mint())) as http,
        http.post(edge_gateway.base_url + "/api/orders", json={"item": "x"}) as r,
    ):
        assert r.status == 201
        assert await r.json() == {"id": "o-late"}
    server.join(timeout=5)
    assert len(requests) == 1, "the POST reached the upstream exactly once"
    assert requests[0].startswith(b"POST /")


def reset_every_connection(port: int, requests: list[bytes], stop: threading.Event) -> None:
    """Listen on ``port`` until ``stop``: read each request's head, then reset the connection."""
    with socket.create_server(("127.0.0.1", port)) as listener:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                requests.append(connection.recv(65536))
                # Linger 0: close with a TCP reset instead of a clean FIN.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_malformed_or_dropped_answers_are_502(
    edge_gateway: ServiceProcess, mint: Mint, broken_requests: list[str], down_order_port: int
) -> None:
    async with aiohttp.ClientSession(headers=bearer(mint())) as http:
        async with http.get(edge_gateway.base_url + "/api/payments/garbage") as r:
            assert r.status == 502
            assert "the payment service sent a malformed response" in (await r.json())["detail"]
        before = len(broken_requests)
        async with http.get(edge_gateway.base_url + "/api/payments/reset") as r:
            assert r.status == 502
            assert (await r.json())["detail"] == (
                "the payment service dropped the connection without answering; retry later"
            )
        # aiohttp retries a GET once (it may have met a stale pooled connection)...
        assert len(broken_requests) - before == 2

        # ...never a POST (only payments' GET is forwarded: orders drop this one).
        requests: list[bytes] = []
        stop = threading.Event()
        server = threading.Thread(
            target=reset_every_connection, args=(down_order_port, requests, stop), daemon=True
        )
        server.start()
        await asyncio.sleep(0.3)
        try:
            async with http.post(edge_gateway.base_url + "/api/orders", json={"x": 1}) as r:
                assert r.status == 502
                assert (await r.json())["detail"] == (
                    "the order service dropped the connection without answering; retry later"
                )
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            server.join(timeout=5)
        assert [request.split(b" ", 1)[0] for request in requests] == [b"POST"]


async def test_dot_segments_and_oversized_bodies_are_refused(
    gateway: ServiceProcess, mint: Mint
) -> None:
    async with aiohttp.ClientSession(headers=bearer(mint())) as http:
        sneaky = URL(gateway.base_url + "/api/orders/%2E%2E", encoded=True)
        async with http.get(sneaky) as r:
            assert r.status == 400
            assert "'.' or '..' segments" in (await r.json())["detail"]
        # A path no service serves is not forwarded at all, resolved or not.
        sneakier = URL(gateway.base_url + "/api/orders/%2E%2E/admin", encoded=True)
        async with http.get(sneakier) as r:
            assert r.status == 404
            assert r.content_type == "application/problem+json"
        async with http.post(gateway.base_url + "/api/orders", data=b"x" * 70_000) as r:
            assert r.status == 413
            assert "larger than 65536 bytes" in (await r.json())["detail"]
        async with http.post(gateway.base_url + "/api/orders", json={"item": "ok"}) as r:
            assert r.status == 200
            assert (await r.json())["body"] == '{"item": "ok"}'
