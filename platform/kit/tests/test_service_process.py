"""The chassis in a real uvicorn process: shutdown, metrics and readiness."""

import asyncio
import signal
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.localstack.nats import NatsServer
from devkit.localstack.process import ServiceProcess
from kit.events import CloudEvent, EventBus
from kit.settings import NatsSettings

SAMPLE = Path(__file__).with_name("sample_service.py")


@pytest.fixture
def sample_factory(tmp_path: Path) -> Iterator["SampleFactory"]:
    factory = SampleFactory(tmp_path)
    yield factory
    for process in factory.started:
        process.stop()


class SampleFactory:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[ServiceProcess] = []
        suffix = uuid.uuid4().hex[:8]
        self.stream = f"S{suffix.upper()}"
        self.subject = f"s{suffix}.work"
        self.journal = tmp_path / "journal.txt"

    def start(self, nats_url: str, **env: str) -> ServiceProcess:
        process = ServiceProcess(
            "sample",
            [sys.executable, str(SAMPLE)],
            self.tmp_path,
            env={
                "NATS_URL": nats_url,
                "SAMPLE_STREAM": self.stream,
                "SAMPLE_SUBJECTS": self.subject,
                "SAMPLE_JOURNAL": str(self.journal),
                "SERVICE_SHUTDOWN_TIMEOUT_SECONDS": "15",
                **env,
            },
        )
        process.start()
        process.wait_until("/readyz", 200)
        self.started.append(process)
        return process

    def journal_lines(self) -> list[str]:
        return self.journal.read_text().splitlines() if self.journal.exists() else []


async def publish(nats_url: str, subject: str, event: CloudEvent) -> None:
    bus = EventBus(NatsSettings(url=nats_url), client_name="test-publisher")
    await bus.connect()
    try:
        await bus.publish(subject, event)
    finally:
        await bus.drain()


async def wait_for_line(factory: SampleFactory, line: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while line not in factory.journal_lines():
        assert time.monotonic() < deadline, f"{line!r} not in {factory.journal_lines()}"
        await asyncio.sleep(0.05)


async def test_sigterm_lets_the_running_handler_finish_and_ack(
    nats_server: NatsServer, sample_factory: SampleFactory
) -> None:
    service = sample_factory.start(nats_server.url)
    event = CloudEvent.new("dev.flotilla.test.v1", source="/tests", data={"sleep": 2.0})
    await publish(nats_server.url, sample_factory.subject, event)
    await wait_for_line(sample_factory, f"start {event.id} 1")

    service.signal(signal.SIGTERM)
    # uvicorn re-raises the signal after its graceful shutdown, so the exit status says SIGTERM.
    assert await asyncio.to_thread(service.wait, 30) in (0, -signal.SIGTERM)
    assert sample_factory.journal_lines() == [f"start {event.id} 1", f"done {event.id} 1"]
    assert "shutdown complete" in service.logs()

    # A new process on the same durable consumer gets nothing again: the ack was delivered.
    sample_factory.start(nats_server.url)
    await asyncio.sleep(2.0)
    assert sample_factory.journal_lines() == [f"start {event.id} 1", f"done {event.id} 1"]


async def test_metrics_count_requests_by_route_template_and_events(
    nats_server: NatsServer, sample_factory: SampleFactory
) -> None:
    service = sample_factory.start(nats_server.url)
    for item in (1, 2, 3):
        assert service.http_status(f"/items/{item}") == 200
    event = CloudEvent.new("dev.flotilla.test.v1", source="/tests", data={})
    await publish(nats_server.url, sample_factory.subject, event)
    await wait_for_line(sample_factory, f"done {event.id} 1")
    await asyncio.sleep(0.2)

    with urllib.request.urlopen(service.base_url + "/metrics") as response:
        metrics = response.read().decode()
    assert 'http_requests_total{method="GET",route="/items/{item_id}",status="200"} 3.0' in metrics
    assert "/items/1" not in metrics
    # Scrapes are counted under their own route, so an analysis of API traffic can leave them out.
    with urllib.request.urlopen(service.base_url + "/metrics") as response:
        metrics = response.read().decode()
    assert 'http_requests_total{method="GET",route="/metrics",status="200"} 1.0' in metrics
    assert (
        'events_consumed_total{consumer="sample-work",outcome="ok",type="dev.flotilla.test.v1"} 1.0'
        in metrics
    )
    assert "event_handler_duration_seconds_count" in metrics


async def test_an_injected_error_ratio_fails_that_share_of_requests_and_counts_them(
    nats_server: NatsServer, sample_factory: SampleFactory
) -> None:
    service = sample_factory.start(nats_server.url, SERVICE_FAULT_ERROR_RATIO="0.2")
    statuses = [service.http_status(f"/items/{item}") for item in range(50)]
    assert statuses.count(500) == 10  # spread evenly: exactly a fifth
    assert statuses.count(200) == 40
    assert all(service.http_status(path) == 200 for path in ("/healthz", "/readyz"))
    with urllib.request.urlopen(service.base_url + "/metrics") as response:
        metrics = response.read().decode()
    # Counted like real errors, so a canary analysis sees them.
    assert 'http_requests_total{method="GET",route="/items/{item_id}",status="500"} 10.0' in metrics
    assert "injecting errors" in service.logs()  # a drill image says so


async def test_readyz_follows_the_nats_connection(
    fresh_nats_server: NatsServer, sample_factory: SampleFactory
) -> None:
    service = sample_factory.start(fresh_nats_server.url)
    assert service.http_status("/readyz") == 200

    fresh_nats_server.stop()
    service.wait_until("/readyz", 503, timeout=10)
    assert service.http_status("/healthz") == 200  # alive, only not ready

    fresh_nats_server.start()
    service.wait_until("/readyz", 200, timeout=15)


def test_the_drain_signal_closes_connections_after_each_response_and_fails_readiness(
    nats_server: NatsServer, sample_factory: SampleFactory
) -> None:
    import http.client

    from kit.prestop import DRAIN_SIGNAL

    service = sample_factory.start(nats_server.url)
    host, port = service.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("GET", "/healthz")
    first = connection.getresponse()
    first.read()
    assert first.getheader("connection") != "close"  # kept alive before the drain
    service.signal(DRAIN_SIGNAL)  # what the preStop hook (python -m kit.prestop) sends
    deadline = time.monotonic() + 5
    while service.http_status("/readyz") != 503:
        assert time.monotonic() < deadline, "readyz did not turn 503 while draining"
        time.sleep(0.05)
    connection.request("GET", "/healthz")  # on the same kept-alive connection
    second = connection.getresponse()
    assert second.status == 200
    second.read()
    assert second.getheader("connection") == "close"
    connection.close()
    # Still serving while it drains; SIGTERM then ends it as before.
    assert service.http_status("/healthz") == 200
    service.signal(signal.SIGTERM)
    assert service.wait() in (0, -signal.SIGTERM)
    assert "shutdown complete" in service.logs()


def test_a_kept_alive_connection_is_closed_once_it_reaches_its_max_age(
    nats_server: NatsServer, sample_factory: SampleFactory
) -> None:
    import http.client

    service = sample_factory.start(nats_server.url, SERVICE_CONNECTION_MAX_AGE_SECONDS="1")
    host, port = service.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    answers = []
    for _ in range(3):  # within its first second: kept alive
        connection.request("GET", "/items/1")
        answer = connection.getresponse()
        answer.read()
        answers.append(answer.getheader("connection"))
    assert "close" not in answers
    time.sleep(1.1)
    connection.request("GET", "/items/1")  # a second old: this answer closes it
    last = connection.getresponse()
    last.read()
    assert last.status == 200
    assert last.getheader("connection") == "close"
    connection.close()


def test_prestop_refuses_a_bad_number_of_seconds() -> None:
    from kit.prestop import main

    assert main(["soon"]) == 2
