"""Rate limits per client: the user when authenticated, else the client address."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import aiohttp

from devkit.localstack.process import ServiceProcess

# As configured for the edge gateway in conftest: 2 a second, bursts of 4.
RATE = 2
BURST = 4


async def statuses(
    http: aiohttp.ClientSession, method: str, url: str, count: int, **options: object
) -> tuple[Counter[int], list[str], int]:
    """Send ``count`` requests at once.

    Returns the statuses, every Retry-After seen, and how many requests the bucket may have
    let through: the burst plus what refilled while the requests were on their way.
    """

    async def one() -> tuple[int, str | None]:
        async with http.request(method, url, **options) as response:  # type: ignore[arg-type]
            await response.read()
            return response.status, response.headers.get("Retry-After")

    started = time.monotonic()
    results = await asyncio.gather(*(one() for _ in range(count)))
    most = BURST + 1 + int((time.monotonic() - started) * RATE)
    seen = Counter(status for status, _ in results)
    return seen, [r for _, r in results if r is not None], most


async def test_each_user_has_a_bucket_and_gets_retry_after_when_it_is_empty(
    edge_gateway: ServiceProcess, mint: Callable[..., str]
) -> None:
    url = edge_gateway.base_url + "/api/auth/me"
    first, second = mint(), mint()
    async with aiohttp.ClientSession() as http:
        seen, retry_after, most = await statuses(
            http, "GET", url, BURST + 6, headers={"Authorization": f"Bearer {first}"}
        )
        # Forwarded requests reach auth, which knows no such user (404); the rest are 429.
        assert BURST <= seen[404] <= most, seen
        assert seen[429] == BURST + 6 - seen[404]
        assert retry_after
        assert all(int(value) >= 1 for value in retry_after)

        async with http.get(url, headers={"Authorization": f"Bearer {second}"}) as response:
            assert response.status == 404  # another user is not held back

        async with http.get(url, headers={"Authorization": f"Bearer {first}"}) as response:
            if response.status == 429:
                problem = await response.json()
                assert "may send 2 per second (bursts of 4)" in problem["detail"]
                await asyncio.sleep(int(response.headers["Retry-After"]))
        async with http.get(url, headers={"Authorization": f"Bearer {first}"}) as response:
            assert response.status == 404  # the bucket refilled


async def test_anonymous_sign_in_attempts_are_limited_per_address(
    edge_gateway: ServiceProcess,
) -> None:
    form = {"grant_type": "password", "username": "nobody@example.com", "password": "guess-1234"}
    async with aiohttp.ClientSession() as http:
        seen, _, most = await statuses(
            http, "POST", edge_gateway.base_url + "/api/auth/token", BURST + 6, data=form
        )
    assert BURST <= seen[401] <= most, seen
    assert seen[429] == BURST + 6 - seen[401]
