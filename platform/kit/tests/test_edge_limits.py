"""The limits of kit.edge_limits in a real uvicorn process (the sample service, 1 s timeouts).

The gateway's suite (services/gateway/tests/test_gateway_edge.py) has the hostile heads; here:
what well-behaved clients still get (keep-alive, pipelining, chunked bodies, 100-continue, a
slow but timely client), and a FastAPI route that reads a body when its client stalls or hangs
up.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.localstack.nats import NatsServer
from devkit.localstack.process import ServiceProcess
from devkit.testing.rawclients import (
    assert_alive_without_traceback,
    exchange,
    hang_up_after,
    request_head,
    requests_total,
    send_and_wait,
    status_of,
)

SAMPLE = Path(__file__).with_name("sample_service.py")
TIMEOUT_SECONDS = 1.0


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, nats_server: NatsServer
) -> Iterator[ServiceProcess]:
    directory = tmp_path_factory.mktemp("edge-sample")
    suffix = uuid.uuid4().hex[:8]
    process = ServiceProcess(
        "sample",
        [sys.executable, str(SAMPLE)],
        directory,
        env={
            "NATS_URL": nats_server.url,
            "SAMPLE_STREAM": f"E{suffix.upper()}",
            "SAMPLE_SUBJECTS": f"e{suffix}.work",
            "SAMPLE_JOURNAL": str(directory / "journal.txt"),
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


def post_item(*fields: str) -> bytes:
    return request_head("POST", "/items", "Content-Type: application/json", *fields)


def statuses(answer: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


async def test_pipelined_requests_on_a_kept_alive_connection_are_answered_in_order(
    service: ServiceProcess,
) -> None:
    body = b'{"name": "pipelined"}'
    requests = (
        request_head("GET", "/items/1")
        + post_item(f"Content-Length: {len(body)}")
        + body
        + request_head("GET", "/items/2", "Connection: close")
    )
    answer, _ = await send_and_wait(service.port, requests, timeout=5)
    assert statuses(answer) == [200, 201, 200]
    assert b'{"name":"pipelined"}' in answer


async def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_time(
    service: ServiceProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(request_head("GET", "/items/1"))
        answer = await reader.readuntil(b'{"item_id":1}')
        assert statuses(answer) == [200]
        answered = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert TIMEOUT_SECONDS - 0.1 < time.monotonic() - answered < TIMEOUT_SECONDS + 2
    finally:
        writer.close()


async def test_a_slow_but_timely_client_is_served(service: ServiceProcess) -> None:
    body = b'{"name": "slow"}'
    request = post_item(f"Content-Length: {len(body)}", "Connection: close") + body
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        # The head in three pieces, then the body in two, each well within its second.
        pieces = [request[:10], request[10:40], request[40 : -len(body)], body[:5], body[5:]]
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(TIMEOUT_SECONDS / 4)
        assert statuses(await asyncio.wait_for(reader.read(), 5)) == [201]
    finally:
        writer.close()


async def test_a_chunked_body_and_100_continue_are_served(service: ServiceProcess) -> None:
    chunked = post_item("Transfer-Encoding: chunked", "Connection: close")
    answer, _ = exchange(service.port, chunked + b'8\r\n{"name":\r\n9\r\n "parts"}\r\n0\r\n\r\n')
    assert statuses(answer) == [201]

    body = b'{"name": "expected"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(
            post_item(f"Content-Length: {len(body)}", "Expect: 100-continue", "Connection: close")
        )
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == (
            b"HTTP/1.1 100 Continue\r\n\r\n"
        )
        writer.write(body)
        assert statuses(await asyncio.wait_for(reader.read(), 5)) == [201]
    finally:
        writer.close()


async def test_a_head_trickled_in_is_cut_at_the_header_timeout(service: ServiceProcess) -> None:
    """The timeout runs from the head's first byte: a byte now and then does not extend it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    started = time.monotonic()
    try:
        writer.write(b"GET /items/1 HTTP/1.1\r\nX-Slow: ")
        while not reader.at_eof() and time.monotonic() - started < 5:
            writer.write(b"a")
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(), TIMEOUT_SECONDS / 5)
            except TimeoutError:
                continue
            assert statuses(answer) == [408]
            break
        else:
            raise AssertionError("the trickling head was not cut")
    except ConnectionError:
        pass  # written after the server closed: it was cut
    finally:
        writer.close()
    assert time.monotonic() - started < TIMEOUT_SECONDS + 2


async def test_a_stalled_body_on_a_fastapi_route_is_408_under_its_route(
    service: ServiceProcess,
) -> None:
    before = requests_total(service, route="/items", status="408")
    answer, took = await send_and_wait(
        service.port, post_item("Content-Length: 50") + b'{"name": "st', timeout=10
    )
    assert statuses(answer) == [408]
    assert TIMEOUT_SECONDS - 0.1 < took < TIMEOUT_SECONDS + 2, took
    assert requests_total(service, route="/items", status="408") == before + 1


async def test_a_client_hanging_up_while_a_route_reads_its_body_is_499(
    service: ServiceProcess,
) -> None:
    """FastAPI reports the disconnect as a 400 it cannot send; the request is counted 499."""
    before = requests_total(service, method="POST", route="/items")
    gone = requests_total(service, method="POST", route="/items", status="499")
    for _ in range(2):
        await hang_up_after(service.port, post_item("Content-Length: 50") + b'{"name": "go')
    deadline = time.monotonic() + 5
    while requests_total(service, method="POST", route="/items") < before + 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert requests_total(service, method="POST", route="/items", status="499") == gone + 2
    assert requests_total(service, status="500") == 0
    assert "the client closed the connection before its response" in service.logs()


async def test_a_body_malformed_while_a_route_reads_it_is_400_under_its_route(
    service: ServiceProcess,
) -> None:
    before = requests_total(service, method="POST", route="/items", status="400")
    chunked = post_item("Transfer-Encoding: chunked")
    answer, _ = await send_and_wait(
        service.port, chunked + b'8\r\n{"name":\r\nnot a chunk size\r\n', timeout=5
    )
    assert statuses(answer) == [400]  # once, from the server: the application's is dropped
    deadline = time.monotonic() + 5
    while requests_total(service, method="POST", route="/items", status="400") < before + 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


def test_a_request_target_over_the_limit_is_414(service: ServiceProcess) -> None:
    answer, _ = exchange(service.port, request_head("GET", "/items/" + "1" * 40_000))
    assert status_of(answer) == 414


def test_the_service_is_alive_after_all_of_them(service: ServiceProcess) -> None:
    assert_alive_without_traceback(service)
    assert service.http_status("/items/7") == 200
