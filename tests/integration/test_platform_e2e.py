"""The whole platform through the gateway: NATS and all four services as real processes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.integration.platform_stack import KID, Platform
from tests.integration.saga_stack import order_body


@pytest.fixture(scope="module")
async def platform_stack(
    repo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    stack = Platform(repo_root, tmp_path_factory.mktemp("platform"))
    await asyncio.to_thread(stack.start)
    yield stack
    stack.stop()


async def sign_up(http: aiohttp.ClientSession, gateway: str) -> dict[str, str]:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    password = "a long and unguessable passphrase"
    async with http.post(
        f"{gateway}/api/auth/register", json={"email": email, "password": password}
    ) as response:
        assert response.status == 201, await response.text()
    async with http.post(
        f"{gateway}/api/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    ) as response:
        assert response.status == 200, await response.text()
        token = (await response.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def wait_final(
    http: aiohttp.ClientSession, gateway: str, auth: dict[str, str], order_id: str
) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    while time.monotonic() - started < 5:
        async with http.get(f"{gateway}/api/orders/{order_id}", headers=auth) as response:
            order: dict[str, Any] = await response.json()
        if order["status"] != "pending":
            return order, time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} still pending after 5 s")


async def test_register_token_order_paid_within_two_seconds(platform_stack: Platform) -> None:
    gateway = platform_stack.gateway
    async with aiohttp.ClientSession() as http:
        auth = await sign_up(http, gateway)
        async with http.get(f"{gateway}/api/auth/me", headers=auth) as response:
            assert response.status == 200
        started = time.monotonic()
        async with http.post(f"{gateway}/api/orders", json=order_body(), headers=auth) as r:
            assert r.status == 201, await r.text()
            order_id = (await r.json())["id"]
        order, _ = await wait_final(http, gateway, auth, order_id)
        assert order["status"] == "paid"
        assert time.monotonic() - started < 2.0
        async with http.get(f"{gateway}/api/payments/{order_id}", headers=auth) as response:
            assert (await response.json())["status"] == "succeeded"


async def test_a_declining_card_ends_in_payment_failed(platform_stack: Platform) -> None:
    gateway = platform_stack.gateway
    async with aiohttp.ClientSession() as http:
        auth = await sign_up(http, gateway)
        body = order_body(token="tok_declined")
        async with http.post(f"{gateway}/api/orders", json=body, headers=auth) as r:
            order_id = (await r.json())["id"]
        order, _ = await wait_final(http, gateway, auth, order_id)
    assert order["status"] == "payment_failed"
    assert order["failure_reason"] == "card_declined"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_missing_or_bad_tokens_are_401(platform_stack: Platform) -> None:
    gateway = platform_stack.gateway
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway}/api/auth/jwks.json") as response:
            jwks = await response.json()
        public = platform_stack.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        claims = {"iss": "flotilla-auth", "aud": "flotilla-api", "sub": "u-1",
                  "iat": int(time.time()), "exp": int(time.time()) + 300}  # fmt: skip
        header = _b64(json.dumps({"alg": "none", "kid": KID}).encode())
        stranger = Ed25519PrivateKey.generate()
        tokens = {
            "wrong audience": platform_stack.token(aud="someone-else"),
            "expired": platform_stack.token(exp=int(time.time()) - 60),
            "alg none": f"{header}.{_b64(json.dumps(claims).encode())}.",
            "HS256 with the public key": _hs256(claims, public),
            "unknown kid": jwt.encode(claims, stranger, "EdDSA", headers={"kid": "nobody"}),
        }
        assert any(key["kid"] == KID for key in jwks["keys"])
        async with http.get(f"{gateway}/api/orders") as response:
            assert response.status == 401, "no token"
        for case, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(f"{gateway}/api/orders", headers=headers) as response:
                assert response.status == 401, case
                assert response.headers["Content-Type"] == "application/problem+json"


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    header = _b64(json.dumps({"alg": "HS256", "kid": KID, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"
