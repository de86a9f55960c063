"""Rate limits per client: the user when authenticated, else the client address."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import aiohttp

from kit.testing.process import ServiceProcess

# As configured for the edge gateway in conftest: 2 a second, bursts of 4.
BURST = 4


async def statuses(
    http: aiohttp.ClientSession, method: str, url: str, count: int, **options: object
) -> tuple[Counter[int], list[str]]:
    """Send ``count`` requests at once; the statuses and every Retry-After seen."""

    async def one() -> tuple[int, str | None]:
        async with http.request(method, url, **options) as response:  # type: ignore[arg-type]
            await response.read()
            return response.status, response.headers.get("Retry-After")

    results = await asyncio.gather(*(one() for _ in range(count)))
    return Counter(status for status, _ in results), [r for _, r in results if r is not None]


async def test_each_user_has_a_bucket_and_gets_retry_after_when_it_is_empty(
    edge_gateway: ServiceProcess, mint: Callable[..., str]
) -> None:
    url = edge_gateway.base_url + "/api/auth/me"
    first, second = mint(), mint()
    async with aiohttp.ClientSession() as http:
        seen, retry_after = await statuses(
            http, "GET", url, BURST + 4, headers={"Authorization": f"Bearer {first}"}
        )
        # Forwarded requests reach auth, which knows no such user (404); the rest are 429.
        # One token may refill while the requests are on their way.
        assert BURST <= seen[404] <= BURST + 1, seen
        assert seen[429] == BURST + 4 - seen[404]
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
        seen, _ = await statuses(
            http, "POST", edge_gateway.base_url + "/api/auth/token", BURST + 4, data=form
        )
    assert BURST <= seen[401] <= BURST + 1, seen
    assert seen[429] == BURST + 4 - seen[401]
