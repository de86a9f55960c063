"""The auth API against its own OpenAPI document (every schemathesis phase and check), input
checks and races."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from devkit.localstack.process import ServiceProcess
from devkit.testing.contract import ApiRun, api_report
from devkit.testing.http import as_user

PASSWORD = "correct horse battery staple"
# Per operation and mode: enough to find what a schema mismatch looks like, in seconds.
EXAMPLES = 15


def test_every_operation_matches_the_openapi_document(
    shared_auth: ServiceProcess, identity_secret: bytes
) -> None:
    """No 5xx, every response as documented, and schema-valid data accepted: the schema's
    patterns are the service's email and password rules."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    run = ApiRun(
        shared_auth.base_url,
        examples=EXAMPLES,
        credentials=lambda: as_user(user, identity_secret),
    )
    report = api_report(run)
    assert not report.failures, "\n\n".join(report.failures)


async def test_weak_or_malformed_input_is_422_with_the_reason(
    shared_auth: ServiceProcess,
) -> None:
    cases = [
        ({"email": "not-an-email", "password": PASSWORD}, "email", "name@example.com"),
        ({"email": "ada@example.com", "password": "short"}, "password", "at least 10"),
        ({"email": "ada@example.com", "password": "aaaaaaaaaaaa"}, "password", "easy to guess"),
        ({"email": "ada@example.com", "password": "ADA@example.com"}, "password", "email"),
    ]
    async with aiohttp.ClientSession(shared_auth.base_url) as http:
        for body, field, hint in cases:
            async with http.post("/auth/register", json=body) as r:
                assert r.status == 422
                assert r.content_type == "application/problem+json"
                problem = await r.json()
            [error] = problem["errors"]
            assert error["loc"] == ["body", field]
            assert hint in error["msg"]
        async with http.post("/auth/token", json={"username": "a", "password": "b"}) as r:
            assert r.status == 415
            assert "application/x-www-form-urlencoded" in (await r.json())["detail"]
        # Not an email (a NUL would be an error in PostgreSQL, a 500): refused before the lookup.
        form = {"grant_type": "password", "username": "ada\x00@example.com", "password": "x"}
        async with http.post("/auth/token", data=form) as r:
            assert r.status == 422
            [error] = (await r.json())["errors"]
            assert error["loc"] == ["body", "username"]
        async with http.post("/auth/token", data={"grant_type": "client_credentials"}) as r:
            assert r.status == 422
            messages = [error["msg"] for error in (await r.json())["errors"]]
        assert any("grant_type must be 'password'" in message for message in messages)


async def test_concurrent_registrations_of_one_email_make_one_account(
    shared_auth: ServiceProcess,
) -> None:
    email = f"twice-{uuid.uuid4().hex[:8]}@example.com"

    async def register(http: aiohttp.ClientSession, address: str) -> int:
        async with http.post(
            "/auth/register", json={"email": address, "password": PASSWORD}
        ) as response:
            return response.status

    async with aiohttp.ClientSession(shared_auth.base_url) as http:
        statuses = await asyncio.gather(
            *(register(http, address) for address in (email, email.upper(), email, email.title()))
        )
    assert sorted(statuses) == [201, 409, 409, 409]
