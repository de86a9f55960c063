"""Hostile and broken HTTP clients over raw sockets, and what a test reads of the server after
them: its metrics and its memory (``/proc``, Linux).

An HTTP client library would not send an oversized or unfinished head, nor hang up halfway
through a body; these do, on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import re
import selectors
import socket
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from devkit.localstack.process import ServiceProcess

Labels = tuple[tuple[str, str], ...]


def request_head(method: str, path: str, *fields: str) -> bytes:
    """An HTTP/1.1 request head: the request line, Host, then ``fields`` ("Name: value")."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(port: int, payload: bytes, timeout: float = 10.0) -> tuple[bytes, int]:
    """Send ``payload`` to 127.0.0.1:``port`` while reading what comes back, until the server
    closes the connection.

    Returns what was received and how many bytes of the payload were sent before the server
    closed. Sending and reading at once catches the answer of a server that refuses a request
    halfway through it, which a blocking send would miss.
    """
    received = bytearray()
    sent = 0
    with (
        socket.create_connection(("127.0.0.1", port)) as client,
        selectors.DefaultSelector() as selector,
    ):
        client.setblocking(False)
        selector.register(client, selectors.EVENT_READ | selectors.EVENT_WRITE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, events in selector.select(timeout=0.5):
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
                        selector.modify(client, selectors.EVENT_READ)
    raise AssertionError(f"the server did not close within {timeout}s; got {received[:300]!r}")


async def send_and_wait(port: int, payload: bytes, timeout: float) -> tuple[bytes, float]:
    """Send ``payload`` to 127.0.0.1:``port``, then nothing more (a client that stalls).

    Returns what came back until the server closed the connection, and how long that took.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(payload)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout)  # up to EOF: closed
        return answer, time.monotonic() - started
    finally:
        writer.close()


async def hang_up_after(port: int, payload: bytes, pause: float = 0.1) -> None:
    """Send ``payload`` (part of a request) to 127.0.0.1:``port``, wait ``pause`` seconds so the
    server reads it, then close the connection."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    await asyncio.sleep(pause)
    writer.close()
    await writer.wait_closed()


def status_of(answer: bytes) -> int:
    """The status code of the HTTP/1.1 response that ``answer`` begins with."""
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    if match is None:
        raise AssertionError(f"not an HTTP/1.1 response: {answer[:200]!r}")
    return int(match.group(1))


def memory_kib(process: ServiceProcess, field: str = "VmRSS") -> int:
    """A memory figure of the process from /proc/<pid>/status: VmRSS (now), VmHWM (its peak)."""
    assert process.process is not None
    status = Path(f"/proc/{process.process.pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise AssertionError(f"no {field} in the process's status:\n{status}")
    return int(match.group(1))


def reset_peak_memory(process: ServiceProcess) -> None:
    """Make VmHWM start again from the current RSS (/proc/<pid>/clear_refs, on our own child)."""
    assert process.process is not None
    Path(f"/proc/{process.process.pid}/clear_refs").write_text("5")


def samples(process: ServiceProcess, metric: str) -> dict[Labels, float]:
    """The samples named ``metric`` on the process's /metrics, keyed by their sorted labels."""
    with socket.create_connection(("127.0.0.1", process.port), timeout=5) as client:
        client.sendall(request_head("GET", "/metrics", "Connection: close"))
        answer = bytearray()
        while chunk := client.recv(65536):
            answer += chunk
    text = bytes(answer).partition(b"\r\n\r\n")[2].decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metric
    }


def requests_total(process: ServiceProcess, **labels: str) -> float:
    """``http_requests_total`` of the process, summed over the series that carry ``labels``."""
    return sum(
        value
        for key, value in samples(process, "http_requests_total").items()
        if labels.items() <= dict(key).items()
    )


def refused_total(process: ServiceProcess, status: int, reason: str) -> float:
    """``http_requests_refused_total`` of the process for ``status`` and ``reason``."""
    key = (("reason", reason), ("status", str(status)))
    return samples(process, "http_requests_refused_total").get(key, 0.0)


def assert_alive_without_traceback(process: ServiceProcess) -> None:
    """The process runs, answers /healthz, and its log holds no traceback."""
    assert process.process is not None
    assert process.process.poll() is None, f"{process.name} exited"
    assert process.http_status("/healthz") == 200
    logs = process.logs()
    assert "Traceback" not in logs, logs[-3000:]
    assert "Exception in ASGI application" not in logs, logs[-3000:]
