"""The run's own users: registered and signed in through the gateway before traffic starts."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from loadgen.outcomes import Outcome, classify_error

REGISTER_PATH = "/api/auth/register"
TOKEN_PATH = "/api/auth/token"  # noqa: S105 - a path, not a secret
# Answers that mean "not now" rather than "never": auth starting (503, or the gateway's 502/504
# while it cannot reach auth), or the gateway's per-address limit on public routes (429).
NOT_READY = frozenset({429, 502, 503, 504})
RETRY_PAUSE_SECONDS = 0.5
# Per setup request, whatever the run's own --timeout: hashing a password can take a while.
SETUP_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
MAX_RETRY_AFTER_SECONDS = 5.0
# Auth hashes every password, which is slow on purpose: a few at a time.
CONCURRENT_SIGN_UPS = 4
# Sign in again halfway through a token's life, so a long run never sends an expired one.
REFRESH_AT_FRACTION = 0.5
REFRESH_RETRY_SECONDS = 5.0


class SetupError(RuntimeError):
    """The run's users could not be created; the message says why and what to do."""


@dataclass
class User:
    """A user of the run: its credentials, its current bearer header and its orders."""

    email: str
    password: str
    headers: dict[str, str] = field(default_factory=dict)
    refresh_at: float = 0.0
    order_ids: list[str] = field(default_factory=list)


async def _answer(
    session: aiohttp.ClientSession, target: str, path: str, deadline: float, **request: Any
) -> tuple[int, bytes]:
    """POST ``path`` until it answers something other than "not ready", or ``deadline``."""
    while True:
        try:
            async with session.post(
                target + path, allow_redirects=False, timeout=SETUP_REQUEST_TIMEOUT, **request
            ) as response:
                status, body = response.status, await response.read()
                retry_after = response.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            outcome, text = classify_error(error)
            if outcome is Outcome.REFUSED:
                raise SetupError(
                    f"nothing answers at {target} (connection refused): start the platform "
                    "(make run) or pass the gateway's address with --target"
                ) from error
            if time.monotonic() >= deadline:
                raise SetupError(f"POST {target}{path} kept failing: {text}") from error
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            continue
        if status not in NOT_READY:
            return status, body
        if time.monotonic() >= deadline:
            raise SetupError(
                f"auth is not ready: POST {target}{path} still answered {status} when the setup "
                f"time ran out ({body[:200].decode(errors='replace')}). Check the auth service "
                "(its logs, its NATS connection), or allow longer (--setup-timeout, "
                "LoadPlan.setup_timeout)"
            )
        pause = float(retry_after) if retry_after.isdigit() else RETRY_PAUSE_SECONDS
        await asyncio.sleep(
            min(pause, MAX_RETRY_AFTER_SECONDS, max(deadline - time.monotonic(), 0))
        )


async def sign_in(
    session: aiohttp.ClientSession, target: str, user: User, *, timeout: float
) -> None:
    """Get ``user`` a fresh token (OAuth2 password grant) and set its bearer header."""
    form = {"grant_type": "password", "username": user.email, "password": user.password}
    status, body = await _answer(session, target, TOKEN_PATH, time.monotonic() + timeout, data=form)
    if status != 200:
        raise SetupError(
            f"POST {target}{TOKEN_PATH} answered {status}, not 200: "
            f"{body[:200].decode(errors='replace')}"
        )
    answer = _token_answer(body, TOKEN_PATH)
    user.headers = {"Authorization": f"Bearer {answer['access_token']}"}
    lifetime = float(answer.get("expires_in", 300))
    user.refresh_at = time.monotonic() + lifetime * REFRESH_AT_FRACTION


def _token_answer(body: bytes, path: str) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or "access_token" not in answer:
        raise SetupError(f"{path} answered 200 without an access_token: {body[:200]!r}")
    return answer


async def sign_up(session: aiohttp.ClientSession, target: str, *, timeout: float) -> User:
    """Register a new user (retrying while auth is not ready, up to ``timeout`` s) and sign in."""
    user = User(
        email=f"loadgen-{uuid.uuid4().hex[:12]}@example.com", password=secrets.token_urlsafe(24)
    )
    started = time.monotonic()
    credentials = {"email": user.email, "password": user.password}
    status, body = await _answer(
        session, target, REGISTER_PATH, started + timeout, json=credentials
    )
    if status != 201:
        raise SetupError(
            f"POST {target}{REGISTER_PATH} answered {status}, not 201: "
            f"{body[:200].decode(errors='replace')}"
        )
    await sign_in(session, target, user, timeout=max(timeout - (time.monotonic() - started), 1.0))
    return user


async def create_users(
    session: aiohttp.ClientSession, target: str, count: int, *, timeout: float
) -> list[User]:
    """``count`` new users, signed in; SetupError when auth is not ready within ``timeout`` s."""
    gate = asyncio.Semaphore(CONCURRENT_SIGN_UPS)

    async def one() -> User:
        async with gate:
            return await sign_up(session, target, timeout=timeout)

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        # One failed: the others would only fail the same way, after the session has closed.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def keep_tokens_fresh(
    session: aiohttp.ClientSession, target: str, users: list[User], *, timeout: float
) -> None:
    """Sign each user in again before its token expires, until cancelled.

    A failed sign-in (auth rolling out) keeps the old token and tries again a little later.
    """
    while True:
        now = time.monotonic()
        for user in users:
            if user.refresh_at <= now:
                try:
                    await sign_in(session, target, user, timeout=timeout)
                except SetupError:
                    user.refresh_at = time.monotonic() + REFRESH_RETRY_SECONDS
        await asyncio.sleep(max(min(u.refresh_at for u in users) - time.monotonic(), 0.1))
