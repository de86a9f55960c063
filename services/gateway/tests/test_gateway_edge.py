"""The edge against hostile and broken clients: raw sockets on a real gateway process.

The gateway here is one of its own (its log and its metrics are the tests'), with 1 s timeouts
so that slow clients are refused quickly, and the default head limits (32 KiB, 100 fields).
Every refusal must come before any work of the application (no token check, no proxying), keep
the process's memory bounded, count no server error and leave no traceback in the log.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from devkit.localstack.ports import free_port
from devkit.localstack.process import ServiceProcess
from devkit.testing.rawclients import (
    assert_alive_without_traceback,
    exchange,
    hang_up_after,
    memory_kib,
    refused_total,
    request_head,
    requests_total,
    reset_peak_memory,
    samples,
    send_and_wait,
    status_of,
)

TIMEOUT_SECONDS = 1.0
MAX_HEADER_BYTES = 32 * 1024  # SERVICE_MAX_HEADER_BYTES's default
MAX_HEADERS = 100  # SERVICE_MAX_HEADERS's default
REGISTER = "/api/auth/register"
ORDER_ROUTE = "/api/orders/{order_id}"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def hostile_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A gateway with 1 s timeouts whose upstreams are down: nothing here is ever forwarded."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    process = ServiceProcess(
        "hostile-gateway",
        [sys.executable, "-m", "gateway_service.main"],
        tmp_path_factory.mktemp("hostile-gateway"),
        env={
            "SERVICE_ENVIRONMENT": "test",
            "IDENTITY_SHARED_SECRET": "edge-tests-identity-secret-5c1d",
            "GATEWAY_AUTH_URL": nowhere,
            "GATEWAY_ORDER_URL": nowhere,
            "GATEWAY_PAYMENT_URL": nowhere,
            "GATEWAY_JWKS_URL": f"{nowhere}/auth/jwks.json",
            "GATEWAY_RATE_LIMIT_PER_SECOND": "1000",
            "GATEWAY_RATE_LIMIT_BURST": "2000",
            "SERVICE_HEADER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "SERVICE_BODY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "SERVICE_KEEPALIVE_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


# ---- heads too large ----------------------------------------------------------------------------


def test_a_header_over_the_limit_is_431_before_the_token_check(
    hostile_gateway: ServiceProcess,
) -> None:
    before = refused_total(hostile_gateway, 431, "header_too_large")
    fits = request_head("GET", "/api/orders", "X-Padding: " + "a" * (MAX_HEADER_BYTES - 200))
    answer, _ = exchange(
        hostile_gateway.port, fits.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    )
    assert status_of(answer) == 401  # within the limit: the application's answer, no token

    answer, _ = exchange(
        hostile_gateway.port,
        request_head("GET", "/api/orders", "X-Padding: " + "a" * MAX_HEADER_BYTES),
    )
    assert status_of(answer) == 431
    assert b"connection: close" in answer.lower()
    assert b"larger than 32768 bytes" in answer
    assert refused_total(hostile_gateway, 431, "header_too_large") == before + 1
    assert_alive_without_traceback(hostile_gateway)


def test_more_header_fields_than_the_limit_is_431(hostile_gateway: ServiceProcess) -> None:
    fields = [f"X-Field-{n}: {n}" for n in range(MAX_HEADERS - 2)]  # with Host and Connection
    answer, _ = exchange(
        hostile_gateway.port, request_head("GET", "/api/orders", *fields, "Connection: close")
    )
    assert status_of(answer) == 401  # exactly the limit: the application's answer

    answer, _ = exchange(
        hostile_gateway.port,
        request_head("GET", "/api/orders", *fields, "X-One: more", "Connection: close"),
    )
    assert status_of(answer) == 431
    assert b"more than 100 header fields" in answer

    flood = [f"X-{n}: {n}" for n in range(20_000)]
    answer, _ = exchange(hostile_gateway.port, request_head("POST", REGISTER, *flood))
    assert status_of(answer) == 431
    assert_alive_without_traceback(hostile_gateway)


@pytest.mark.parametrize("size", [8 * MiB, 32 * MiB], ids=["8MiB", "32MiB"])
def test_a_huge_header_is_refused_without_being_read_in_full(
    hostile_gateway: ServiceProcess, size: int
) -> None:
    """No token either: before this, the gateway read all of it, then answered 401."""
    rss_before = memory_kib(hostile_gateway, "VmRSS")
    reset_peak_memory(hostile_gateway)
    payload = request_head("GET", "/api/orders/1", "X-Huge: " + "h" * size)
    answer, _ = exchange(hostile_gateway.port, payload)
    assert status_of(answer) == 431
    # The peak while it refused: the limit plus a few reads of the socket, not the header.
    grown = memory_kib(hostile_gateway, "VmHWM") - rss_before
    assert grown < 4 * 1024, f"the gateway's memory grew by {grown} KiB for a {size}-byte header"
    assert_alive_without_traceback(hostile_gateway)


# ---- slow clients -------------------------------------------------------------------------------


async def test_a_head_that_never_ends_is_408_and_closed_within_the_timeout(
    hostile_gateway: ServiceProcess,
) -> None:
    before = refused_total(hostile_gateway, 408, "header_timeout")
    unfinished = request_head("GET", "/api/orders").removesuffix(b"\r\n\r\n") + b"\r\nX-Slow: 1"
    answer, took = await send_and_wait(hostile_gateway.port, unfinished, timeout=10)
    assert status_of(answer) == 408
    assert b"connection: close" in answer.lower()
    assert TIMEOUT_SECONDS - 0.1 < took < TIMEOUT_SECONDS + 2, took
    assert refused_total(hostile_gateway, 408, "header_timeout") == before + 1

    # Many at once (slow-loris) are each refused in time.
    answers = await asyncio.gather(
        *(send_and_wait(hostile_gateway.port, unfinished, 10) for _ in range(50))
    )
    assert {status_of(answer) for answer, _ in answers} == {408}
    assert max(took for _, took in answers) < TIMEOUT_SECONDS + 3
    assert_alive_without_traceback(hostile_gateway)


async def test_a_connection_that_sends_nothing_is_closed_after_the_keepalive_time(
    hostile_gateway: ServiceProcess,
) -> None:
    answer, took = await send_and_wait(hostile_gateway.port, b"", timeout=10)
    assert answer == b""  # no request, no answer: closed
    assert TIMEOUT_SECONDS - 0.1 < took < TIMEOUT_SECONDS + 2, took


async def test_a_slow_body_on_the_public_register_route_is_408(
    hostile_gateway: ServiceProcess,
) -> None:
    before = requests_total(hostile_gateway, route=REGISTER, status="408")
    request = request_head(
        "POST", REGISTER, "Content-Type: application/json", "Content-Length: 100"
    )
    answer, took = await send_and_wait(
        hostile_gateway.port, request + b'{"email": "slow', timeout=10
    )
    assert status_of(answer) == 408
    assert b"body did not arrive within 1 s" in answer
    assert TIMEOUT_SECONDS - 0.1 < took < TIMEOUT_SECONDS + 2, took
    # Counted under its route, a client's error, and no server error.
    assert requests_total(hostile_gateway, route=REGISTER, status="408") == before + 1
    assert requests_total(hostile_gateway, status="500") == 0
    assert_alive_without_traceback(hostile_gateway)


async def test_a_client_hanging_up_mid_body_is_counted_499_without_a_traceback(
    hostile_gateway: ServiceProcess,
) -> None:
    before = requests_total(hostile_gateway, route=REGISTER, status="499")
    timed = samples(hostile_gateway, "http_request_duration_seconds_count")
    request = request_head(
        "POST", REGISTER, "Content-Type: application/json", "Content-Length: 100"
    )
    for _ in range(3):
        await hang_up_after(hostile_gateway.port, request + b'{"email": "gone')
    deadline = time.monotonic() + 5
    while requests_total(hostile_gateway, route=REGISTER, status="499") < before + 3:
        assert time.monotonic() < deadline, samples(hostile_gateway, "http_requests_total")
        await asyncio.sleep(0.05)
    assert requests_total(hostile_gateway, status="500") == 0
    # Their duration is the client's doing: not observed as the service's latency.
    assert samples(hostile_gateway, "http_request_duration_seconds_count").get(
        (("method", "POST"), ("route", REGISTER))
    ) == timed.get((("method", "POST"), ("route", REGISTER)))
    assert "the client closed the connection before its response" in hostile_gateway.logs()
    assert_alive_without_traceback(hostile_gateway)


# ---- route labels -------------------------------------------------------------------------------


async def test_proxied_requests_are_counted_under_their_route_template(
    gateway: ServiceProcess, mint: Callable[..., str]
) -> None:
    """Not under "<unmatched>", which a canary analysis leaves out of the traffic it weighs."""
    unmatched = requests_total(gateway, route="<unmatched>")
    orders = requests_total(gateway, method="GET", route=ORDER_ROUTE, status="200")
    listing = requests_total(gateway, method="GET", route="/api/orders", status="200")
    async with aiohttp.ClientSession(gateway.base_url) as http:
        headers = {"Authorization": f"Bearer {mint()}"}
        for path in ("/api/orders/a-1", "/api/orders/b-2", "/api/orders"):
            async with http.get(path, headers=headers) as response:
                assert response.status == 200, await response.text()
        async with http.post(REGISTER, json={"email": "not an email"}) as response:
            assert response.status == 422  # auth's answer, passed through
    assert requests_total(gateway, method="GET", route=ORDER_ROUTE, status="200") == (orders + 2)
    assert requests_total(gateway, method="GET", route="/api/orders", status="200") == listing + 1
    assert requests_total(gateway, method="POST", route=REGISTER, status="422") >= 1
    assert requests_total(gateway, route="<unmatched>") == unmatched
    latency = samples(gateway, "http_request_duration_seconds_count")
    assert (("method", "GET"), ("route", ORDER_ROUTE)) in latency
    assert not any("a-1" in value for key in latency for _, value in key)


def test_after_all_of_them_the_gateway_still_serves_and_logged_no_traceback(
    hostile_gateway: ServiceProcess,
) -> None:
    assert_alive_without_traceback(hostile_gateway)
    assert hostile_gateway.http_status("/api/orders") == 401
    assert requests_total(hostile_gateway, status="500") == 0
