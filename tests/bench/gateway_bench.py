"""Gateway throughput against calling the service directly, measured in the same run."""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from devkit.testing.http import as_user
from tests.bench.stats import percentile
from tests.integration.platform_stack import Platform
from tests.integration.saga_stack import order_body


@dataclass(frozen=True)
class Throughput:
    """One closed-loop run: requests per second and latency percentiles (seconds)."""

    per_second: float
    p50: float
    p99: float
    errors: int


async def closed_loop(
    url: str, headers: dict[str, str], connections: int, seconds: float
) -> Throughput:
    """``connections`` clients each sending GET ``url`` back to back for ``seconds``."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def client() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                async with http.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.monotonic()
        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.monotonic() - began
    return Throughput(
        len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99), errors
    )


async def run_gateway_bench(
    repo: Path, connections: int, seconds: float
) -> tuple[Throughput, Throughput]:
    """Direct to order, then through the gateway, alternating twice; best of each."""
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as directory:
        # One user drives all the load: lift the per-client rate limit for the measurement.
        platform = Platform(
            repo,
            Path(directory),
            GATEWAY_RATE_LIMIT_PER_SECOND="1000000",
            GATEWAY_RATE_LIMIT_BURST="1000000",
            SERVICE_LOG_LEVEL="WARNING",
        )
        await asyncio.to_thread(platform.start)
        try:
            user = "bench-user"
            token = platform.token(sub=user)
            bearer = {"Authorization": f"Bearer {token}"}
            order = platform.services["order"].base_url
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{order}/orders", json=order_body(), headers=as_user(user)) as response,
            ):
                order_id = (await response.json())["id"]
            direct_url = f"{order}/orders/{order_id}"
            gateway_url = f"{platform.gateway}/api/orders/{order_id}"
            await closed_loop(gateway_url, bearer, connections, 1.0)  # warm-up
            direct: list[Throughput] = []
            through: list[Throughput] = []
            for _ in range(2):
                direct.append(await closed_loop(direct_url, as_user(user), connections, seconds))
                through.append(await closed_loop(gateway_url, bearer, connections, seconds))
        finally:
            await asyncio.to_thread(platform.stop)
    return max(direct, key=lambda t: t.per_second), max(through, key=lambda t: t.per_second)
