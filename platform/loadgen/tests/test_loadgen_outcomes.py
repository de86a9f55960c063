"""Outcome classes from the exceptions aiohttp really raises against misbehaving local servers."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from devkit.localstack.ports import free_port
from loadgen.outcomes import Outcome, classify_error, classify_status

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[str]:
    """A raw TCP server on 127.0.0.1 running ``handler`` per connection; yields its URL."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/orders"
    finally:
        server.close()
        await server.wait_closed()


async def outcome_of(url: str, timeout: float = 2.0) -> tuple[Outcome, str]:
    """Send GET ``url`` the way the load generator does; the class of what happened."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        try:
            async with session.get(url, allow_redirects=False) as response:
                await response.read()
                return classify_status(response.status), str(response.status)
        except Exception as error:
            return classify_error(error)


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def test_a_port_nothing_listens_on_is_refused() -> None:
    outcome, text = await outcome_of(f"http://127.0.0.1:{free_port()}/api/orders")
    assert outcome is Outcome.REFUSED
    assert text.startswith("ClientConnectorError")


async def test_a_server_closing_without_an_answer_is_a_reset() -> None:
    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async with tcp_server(close) as url:
        outcome, text = await outcome_of(url)
    assert (outcome, text.split(":")[0]) == (Outcome.RESET, "ServerDisconnectedError")


async def test_a_connection_reset_by_the_server_is_a_reset() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        # Linger 0: closing sends RST instead of FIN.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with tcp_server(reset) as url:
        outcome, text = await outcome_of(url)
    assert outcome is Outcome.RESET, text


async def test_an_answer_cut_short_is_a_reset() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id":')
        await writer.drain()
        writer.close()

    async with tcp_server(cut) as url:
        outcome, text = await outcome_of(url)
    assert (outcome, text.split(":")[0]) == (Outcome.RESET, "ClientPayloadError")


async def test_a_server_that_does_not_answer_in_time_is_a_timeout() -> None:
    async def sleep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(2)
        writer.close()

    async with tcp_server(sleep) as url:
        outcome, _ = await outcome_of(url, timeout=0.2)
    assert outcome is Outcome.TIMEOUT


async def test_a_503_is_a_server_error_and_garbage_is_other() -> None:
    async def unavailable(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        writer.close()

    async with tcp_server(unavailable) as url:
        assert await outcome_of(url) == (Outcome.SERVER_ERROR, "503")
    async with tcp_server(garbage) as url:
        outcome, text = await outcome_of(url)
    assert (outcome, text.split(":")[0]) == (Outcome.OTHER, "ClientResponseError")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.OK),
        (201, Outcome.OK),
        (302, Outcome.OTHER),
        (404, Outcome.CLIENT_ERROR),
        (429, Outcome.CLIENT_ERROR),
        (500, Outcome.SERVER_ERROR),
        (504, Outcome.SERVER_ERROR),
    ],
)
def test_statuses_map_to_classes(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


def test_which_classes_fail_a_run() -> None:
    assert {o for o in Outcome if o.failed} == set(Outcome) - {Outcome.OK, Outcome.CLIENT_ERROR}


def test_every_address_of_a_name_refusing_is_refused_and_other_os_errors_are_not() -> None:
    # asyncio's own error when each address of a name failed (no errno of its own).
    every = OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 1), "
                    "[Errno 111] Connect call failed ('127.0.0.1', 1)")  # fmt: skip
    mixed = OSError("Multiple exceptions: [Errno 111] refused, [Errno 113] no route to host")
    key = ConnectionKey("localhost", 1, False, True, None, None, None, None)
    assert classify_error(aiohttp.ClientConnectorError(key, every))[0] is Outcome.REFUSED
    assert classify_error(aiohttp.ClientConnectorError(key, mixed))[0] is Outcome.OTHER
    assert classify_error(BrokenPipeError(32, "Broken pipe"))[0] is Outcome.RESET
    assert classify_error(ValueError("odd"))[0] is Outcome.OTHER
