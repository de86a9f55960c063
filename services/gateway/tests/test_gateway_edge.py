"""The edge against hostile and broken clients: raw sockets on a real gateway process.

The gateway here is one of its own (its log and its metrics are the tests'), with 1 s timeouts
so that slow clients are refused quickly, and the default head limits (32 KiB, 100 fields).
Every refusal must come before any work of the application (no token check, no proxying), keep
the process's memory bounded, count no server error and leave no traceback in the log.
"""

from __future__ import annotations

import asyncio
import re
import selectors
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devkit.localstack.ports import free_port
from devkit.localstack.process import ServiceProcess

TIMEOUT_SECONDS = 1.0
MAX_HEADER_BYTES = 32 * 1024  # SERVICE_MAX_HEADER_BYTES's default
MAX_HEADERS = 100  # SERVICE_MAX_HEADERS's default
REGISTER = "/api/auth/register"
AUTH_ROUTE = "/api/auth/{path:path}"
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
    process.start(timeout=60)
    try:
        yield process
    finally:
        process.stop()


# ---- clients ------------------------------------------------------------------------------------


def head(method: str, path: str, *fields: str) -> bytes:
    """A request head with ``fields`` after Host (each "Name: value")."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(port: int, payload: bytes, timeout: float = 10.0) -> tuple[bytes, int]:
    """Send ``payload`` while reading whatever comes back, until the server closes.

    Returns what was received and how many bytes of the payload the server let in (the sending
    stops when it closes the connection). A blocking send would miss the answer of a server that
    refuses a request halfway through.
    """
    received = bytearray()
    sent = 0
    with (
        socket.create_connection(("127.0.0.1", port)) as client,
        selectors.DefaultSelector() as sel,
    ):
        client.setblocking(False)
        sel.register(client, selectors.EVENT_READ | selectors.EVENT_WRITE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, events in sel.select(timeout=0.5):
                if events & selectors.EVENT_READ:
                    try:
                        chunk = client.recv(65536)
                    except ConnectionError:
                        return bytes(received), sent
                    if not chunk:
                        return bytes(received), sent
                    received += chunk
                if events & selectors.EVENT_WRITE and sent < len(payload):
                    try:
                        sent += client.send(payload[sent : sent + 256 * 1024])
                        done = sent == len(payload)
                    except ConnectionError:
                        done = True  # refused: read the answer
                    if done:
                        sel.modify(client, selectors.EVENT_READ)
        raise AssertionError(f"the server did not close within {timeout}s; got {received[:300]!r}")


async def hold(port: int, payload: bytes, timeout: float) -> tuple[bytes, float]:
    """Send ``payload`` and nothing more; returns what came back until the server closed, and
    how long that took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(payload)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout)  # up to EOF: closed
        return answer, time.monotonic() - started
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert match, f"not an HTTP response: {answer[:200]!r}"
    return int(match.group(1))


# ---- the process --------------------------------------------------------------------------------


def memory_kib(process: ServiceProcess, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak) of the process, from /proc."""
    assert process.process is not None
    status = Path(f"/proc/{process.process.pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def reset_peak_memory(process: ServiceProcess) -> None:
    """Start VmHWM again from the current RSS (Linux's clear_refs, on a process of ours)."""
    assert process.process is not None
    Path(f"/proc/{process.process.pid}/clear_refs").write_text("5")


def counted(process: ServiceProcess, metric: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of ``metric`` on the process's /metrics, by their sorted labels."""
    with socket.create_connection(("127.0.0.1", process.port), timeout=5) as client:
        client.sendall(head("GET", "/metrics", "Connection: close"))
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    text = answer.partition(b"\r\n\r\n")[2].decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metric
    }


def requests_total(process: ServiceProcess, **labels: str) -> float:
    """http_requests_total summed over the series that carry ``labels``."""
    return sum(
        value
        for key, value in counted(process, "http_requests_total").items()
        if labels.items() <= dict(key).items()
    )


def refused_total(process: ServiceProcess, status: int, reason: str) -> float:
    key = (("reason", reason), ("status", str(status)))
    return counted(process, "http_requests_refused_total").get(key, 0.0)


def assert_healthy(process: ServiceProcess) -> None:
    assert process.process is not None
    assert process.process.poll() is None
    assert process.http_status("/healthz") == 200
    logs = process.logs()
    assert "Traceback" not in logs, logs[-3000:]
    assert "Exception in ASGI application" not in logs, logs[-3000:]


# ---- heads too large ----------------------------------------------------------------------------


def test_a_header_over_the_limit_is_431_before_the_token_check(
    hostile_gateway: ServiceProcess,
) -> None:
    before = refused_total(hostile_gateway, 431, "header_too_large")
    fits = head("GET", "/api/orders", "X-Padding: " + "a" * (MAX_HEADER_BYTES - 200))
    answer, _ = exchange(
        hostile_gateway.port, fits.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    )
    assert status_of(answer) == 401  # within the limit: the application's answer, no token

    answer, _ = exchange(
        hostile_gateway.port, head("GET", "/api/orders", "X-Padding: " + "a" * MAX_HEADER_BYTES)
    )
    assert status_of(answer) == 431
    assert b"connection: close" in answer.lower()
    assert b"larger than 32768 bytes" in answer
    assert refused_total(hostile_gateway, 431, "header_too_large") == before + 1
    assert_healthy(hostile_gateway)


def test_more_header_fields_than_the_limit_is_431(hostile_gateway: ServiceProcess) -> None:
    fields = [f"X-Field-{n}: {n}" for n in range(MAX_HEADERS - 2)]  # with Host and Connection
    answer, _ = exchange(
        hostile_gateway.port, head("GET", "/api/orders", *fields, "Connection: close")
    )
    assert status_of(answer) == 401  # exactly the limit: the application's answer

    answer, _ = exchange(
        hostile_gateway.port,
        head("GET", "/api/orders", *fields, "X-One: more", "Connection: close"),
    )
    assert status_of(answer) == 431
    assert b"more than 100 header fields" in answer

    flood = [f"X-{n}: {n}" for n in range(20_000)]
    answer, _ = exchange(hostile_gateway.port, head("POST", REGISTER, *flood))
    assert status_of(answer) == 431
    assert_healthy(hostile_gateway)


@pytest.mark.parametrize("size", [8 * MiB, 32 * MiB], ids=["8MiB", "32MiB"])
def test_a_huge_header_is_refused_without_being_read_in_full(
    hostile_gateway: ServiceProcess, size: int
) -> None:
    """No token either: before this, the gateway read all of it, then answered 401."""
    rss_before = memory_kib(hostile_gateway, "VmRSS")
    reset_peak_memory(hostile_gateway)
    payload = head("GET", "/api/orders/1", "X-Huge: " + "h" * size)
    answer, _ = exchange(hostile_gateway.port, payload)
    assert status_of(answer) == 431
    # The peak while it refused: the limit plus a few reads of the socket, not the header.
    grown = memory_kib(hostile_gateway, "VmHWM") - rss_before
    assert grown < 4 * 1024, f"the gateway's memory grew by {grown} KiB for a {size}-byte header"
    assert_healthy(hostile_gateway)


# ---- slow clients -------------------------------------------------------------------------------


async def test_a_head_that_never_ends_is_408_and_closed_within_the_timeout(
    hostile_gateway: ServiceProcess,
) -> None:
    before = refused_total(hostile_gateway, 408, "header_timeout")
    unfinished = head("GET", "/api/orders").removesuffix(b"\r\n\r\n") + b"\r\nX-Slow: 1"
    answer, took = await hold(hostile_gateway.port, unfinished, timeout=10)
    assert status_of(answer) == 408
    assert b"connection: close" in answer.lower()
    assert TIMEOUT_SECONDS - 0.1 < took < TIMEOUT_SECONDS + 2, took
    assert refused_total(hostile_gateway, 408, "header_timeout") == before + 1

    # Many at once (slow-loris) are each refused in time.
    answers = await asyncio.gather(*(hold(hostile_gateway.port, unfinished, 10) for _ in range(50)))
    assert {status_of(answer) for answer, _ in answers} == {408}
    assert max(took for _, took in answers) < TIMEOUT_SECONDS + 3
    assert_healthy(hostile_gateway)


async def test_a_connection_that_sends_nothing_is_closed_after_the_keepalive_time(
    hostile_gateway: ServiceProcess,
) -> None:
    answer, took = await hold(hostile_gateway.port, b"", timeout=10)
    assert answer == b""  # no request, no answer: closed
    assert TIMEOUT_SECONDS - 0.1 < took < TIMEOUT_SECONDS + 2, took


async def test_a_slow_body_on_the_public_register_route_is_408(
    hostile_gateway: ServiceProcess,
) -> None:
    before = requests_total(hostile_gateway, route=AUTH_ROUTE, status="408")
    request = head("POST", REGISTER, "Content-Type: application/json", "Content-Length: 100")
    answer, took = await hold(hostile_gateway.port, request + b'{"email": "slow', timeout=10)
    assert status_of(answer) == 408
    assert b"body did not arrive within 1 s" in answer
    assert TIMEOUT_SECONDS - 0.1 < took < TIMEOUT_SECONDS + 2, took
    # Counted under its route, a client's error, and no server error.
    assert requests_total(hostile_gateway, route=AUTH_ROUTE, status="408") == before + 1
    assert requests_total(hostile_gateway, status="500") == 0
    assert_healthy(hostile_gateway)


async def test_a_client_hanging_up_mid_body_is_counted_499_without_a_traceback(
    hostile_gateway: ServiceProcess,
) -> None:
    before = requests_total(hostile_gateway, route=AUTH_ROUTE, status="499")
    request = head("POST", REGISTER, "Content-Type: application/json", "Content-Length: 100")
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", hostile_gateway.port)
        writer.write(request + b'{"email": "gone')
        await writer.drain()
        await asyncio.sleep(0.1)  # the gateway is reading the body now
        writer.close()
        await writer.wait_closed()
    deadline = time.monotonic() + 5
    while requests_total(hostile_gateway, route=AUTH_ROUTE, status="499") < before + 3:
        assert time.monotonic() < deadline, counted(hostile_gateway, "http_requests_total")
        await asyncio.sleep(0.05)
    assert requests_total(hostile_gateway, status="500") == 0
    assert "the client closed the connection before its response" in hostile_gateway.logs()
    assert_healthy(hostile_gateway)


def test_after_all_of_them_the_gateway_still_serves_and_logged_no_traceback(
    hostile_gateway: ServiceProcess,
) -> None:
    assert_healthy(hostile_gateway)
    assert hostile_gateway.http_status("/api/orders") == 401
    assert requests_total(hostile_gateway, status="500") == 0
