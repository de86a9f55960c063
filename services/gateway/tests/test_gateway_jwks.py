"""Key rotation: the gateway fetches auth's JWKS again for a new kid, but not for every one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devkit.localstack.process import ServiceProcess

MIN_INTERVAL_SECONDS = 1.0  # GATEWAY_JWKS_REFRESH_MIN_INTERVAL_SECONDS of the test gateways


async def jwks_fetches(gateway: ServiceProcess) -> float:
    """How often the gateway has fetched the JWKS (successfully or not), from its metrics."""
    async with aiohttp.ClientSession() as http, http.get(gateway.base_url + "/metrics") as r:
        text = await r.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gateway_jwks_fetches_total{")
    )


async def status_of(gateway: ServiceProcess, path: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(gateway.base_url + path, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        await response.read()
        return response.status


async def test_a_rotated_key_is_fetched_once_and_the_previous_one_still_verifies(
    gateway: ServiceProcess, stack: Any, mint: Callable[..., str]
) -> None:
    old_token = mint()
    assert await status_of(gateway, "/api/orders", old_token) == 200
    before = await jwks_fetches(gateway)

    await asyncio.to_thread(stack.rotate_auth_key, f"key-{uuid.uuid4().hex[:6]}")
    await asyncio.sleep(MIN_INTERVAL_SECONDS)

    # A real sign-in now gets a token signed with the new key, which the gateway has not seen.
    email = f"rotated-{uuid.uuid4().hex[:8]}@example.com"
    account = {"email": email, "password": "correct horse battery staple"}
    form = {"grant_type": "password", "username": email, "password": account["password"]}
    async with aiohttp.ClientSession(gateway.base_url) as http:
        async with http.post("/api/auth/register", json=account) as r:
            assert r.status == 201, await r.text()
        async with http.post("/api/auth/token", data=form) as r:
            new_token = (await r.json())["access_token"]
    assert await status_of(gateway, "/api/auth/me", new_token) == 200
    assert await status_of(gateway, "/api/orders", old_token) == 200  # previous key
    assert await jwks_fetches(gateway) - before == 1


async def test_made_up_key_ids_cost_auth_at_most_one_fetch_per_interval(
    gateway: ServiceProcess, mint: Callable[..., str]
) -> None:
    before = await jwks_fetches(gateway)
    started = time.monotonic()
    tokens = [
        mint(key=Ed25519PrivateKey.generate(), headers={"kid": f"bogus-{n}-{uuid.uuid4().hex}"})
        for n in range(40)
    ]
    results = await asyncio.gather(*(status_of(gateway, "/api/orders", t) for t in tokens))
    elapsed = time.monotonic() - started
    assert set(results) == {401}
    assert await jwks_fetches(gateway) - before <= 1 + elapsed / MIN_INTERVAL_SECONDS
