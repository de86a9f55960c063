"""The auth API over HTTP, against a real auth process on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.js.errors import NotFoundError

from auth_service.domain.keys import thumbprint
from devkit.localstack.nats import NatsServer
from devkit.localstack.process import ServiceProcess
from kit.events import CloudEvent, EventBus
from kit.identity import sign_identity
from kit.settings import NatsSettings

PASSWORD = "correct horse battery staple"
FORM = {"grant_type": "password"}


async def registered_event(nats_url: str, user_id: str, timeout: float = 15) -> CloudEvent:
    """The ``auth.user.registered`` event about ``user_id``, read from the AUTH stream."""
    bus = EventBus(NatsSettings(url=nats_url), client_name="auth-tests")
    await bus.connect()
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                subscription = await bus.js.pull_subscribe("auth.user.registered", stream="AUTH")
                break
            except NotFoundError:  # the service creates the stream once it is connected
                assert time.monotonic() < deadline, "the AUTH stream was never created"
                await asyncio.sleep(0.1)
        while time.monotonic() < deadline:
            for message in await subscription.fetch(100, timeout=5):
                event = CloudEvent.from_bytes(message.data)
                if event.subject == user_id:
                    return event
        raise AssertionError(f"no auth.user.registered event for {user_id}")
    finally:
        await bus.drain()


async def test_register_sign_in_and_verify_the_token(
    database_url: str,
    nats_server: NatsServer,
    signing_key: tuple[Ed25519PrivateKey, Path],
    key_env: dict[str, str],
    identity_secret: bytes,
    start_auth: Callable[..., ServiceProcess],
) -> None:
    auth = start_auth(DATABASE_URL=database_url, NATS_URL=nats_server.url, **key_env)
    email = f"Ada.{uuid.uuid4().hex[:8]}@Example.com"
    async with aiohttp.ClientSession(auth.base_url) as http:
        async with http.post("/auth/register", json={"email": email, "password": PASSWORD}) as r:
            assert r.status == 201, await r.text()
            user = await r.json()
        assert user["email"] == email
        user_id = user["id"]

        # The same address in other letters is taken; the problem says what to do.
        taken = {"email": email.lower(), "password": PASSWORD}
        async with http.post("/auth/register", json=taken) as r:
            assert r.status == 409
            assert r.content_type == "application/problem+json"
            assert "already exists" in (await r.json())["detail"]

        # Wrong password and unknown email: the same 401, so emails cannot be probed.
        wrong = {**FORM, "username": email, "password": "not the password"}
        unknown = {
            **FORM,
            "username": f"nobody-{uuid.uuid4().hex}@example.com",
            "password": PASSWORD,
        }
        details = []
        for form in (wrong, unknown):
            async with http.post("/auth/token", data=form) as r:
                assert r.status == 401
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
                details.append((await r.json())["detail"])
        assert details[0] == details[1]

        async with http.post(
            "/auth/token", data={**FORM, "username": email.upper(), "password": PASSWORD}
        ) as r:
            assert r.status == 200, await r.text()
            assert r.headers["Cache-Control"] == "no-store"
            issued = await r.json()
        assert issued["token_type"] == "bearer"
        assert issued["expires_in"] == 900

        async with http.get("/auth/jwks.json") as r:
            assert r.status == 200
            jwks = await r.json()
        kids = [key["kid"] for key in jwks["keys"]]
        assert kids == [thumbprint(signing_key[0].public_key()), key_env["AUTH_PREVIOUS_KEY_ID"]]
        assert all(key["alg"] == "EdDSA" and key["use"] == "sig" for key in jwks["keys"])

        claims = verify_with_jwks(issued["access_token"], jwks)
        assert claims["sub"] == user_id
        assert claims["exp"] - claims["iat"] == 900

        # /auth/me trusts only identity headers signed by the gateway.
        async with http.get("/auth/me") as r:
            assert r.status == 401
            assert "through the gateway" in (await r.json())["detail"]
        forged = sign_identity(b"not-the-shared-secret", user_id)
        async with http.get("/auth/me", headers=forged) as r:
            assert r.status == 401
        vouched = sign_identity(identity_secret, user_id)
        async with http.get("/auth/me", headers=vouched) as r:
            assert r.status == 200
            assert await r.json() == {"id": user_id, "email": email}

    event = await registered_event(nats_server.url, user_id)
    assert event.type == "dev.flotilla.auth.user.registered.v1"
    assert event.source == "/services/auth"
    assert event.data["user_id"] == user_id
    assert event.data["email"] == email


def verify_with_jwks(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """Verify ``token`` as a consumer would: the JWKS key named by its kid, its alg only."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience="flotilla-api",
        issuer="flotilla-auth",
        options={"require": ["exp", "iat", "sub", "iss", "aud"]},
    )
    return claims
