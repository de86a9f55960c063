"""The canary's metric gate: judge() on its own, then measure() against a real Prometheus that
scrapes real service processes on the chassis (kit's middleware and /metrics, so the series are
the ones every service exports).

Run as a script, this file is that service: GET /work answers the status its query asks for,
POST /work reads a body.
"""

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request, Response

from deployer.adapters.prometheus import PrometheusError, PrometheusQueries, selector
from deployer.canary.analysis import Measurement, Thresholds, TrackNumbers, Verdict, judge, measure
from deployer.canary.status import measurement_json
from devkit.localstack.ports import free_port
from devkit.localstack.process import ServiceProcess
from devkit.localstack.prometheus import PrometheusServer, Target, pod_targets
from devkit.testing.rawclients import hang_up_after, request_head
from kit.app import ServiceSpec
from kit.serve import serve

router = APIRouter()


@router.get("/work")
async def work(status: int = 200) -> Response:
    return Response(status_code=status)


@router.post("/work")
async def upload(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


SAMPLE = ServiceSpec(name="canary-sample", routers=[router], uses_nats=False)

HEALTHY = TrackNumbers(requests=200, success_rate=1.0, p99_seconds=0.02)
DEFAULTS = Thresholds()
WINDOW = 30.0


def judged(canary: TrackNumbers, stable: TrackNumbers = HEALTHY, **thresholds: Any) -> Measurement:
    return judge(canary, stable, Thresholds(**thresholds), WINDOW)


# judge()


def test_a_healthy_canary_passes() -> None:
    measurement = judged(TrackNumbers(requests=120, success_rate=0.995, p99_seconds=0.03))
    assert measurement.verdict is Verdict.PASS
    assert measurement.broken == ()
    assert measurement.reason == (
        "canary healthy over 30 s: 120 requests, success rate 99.5%, p99 30 ms"
    )


def test_a_low_success_rate_fails_naming_the_threshold() -> None:
    measurement = judged(TrackNumbers(requests=120, success_rate=0.792, p99_seconds=0.03))
    assert measurement.verdict is Verdict.FAIL
    assert measurement.broken[0] == "success rate 79.2% is below the threshold 99.0%"
    assert measurement.reason.startswith("the canary broke 2 thresholds in 30 s: success rate")


def test_a_rate_just_below_the_threshold_shows_the_decimals_that_tell_them_apart() -> None:
    measurement = judged(
        TrackNumbers(requests=10000, success_rate=0.9899, p99_seconds=0.03),
        TrackNumbers(requests=10000, success_rate=0.995, p99_seconds=0.03),
    )
    assert measurement.broken == ("success rate 98.99% is below the threshold 99.0%",)


def test_a_slow_p99_fails() -> None:
    measurement = judged(
        TrackNumbers(requests=120, success_rate=1.0, p99_seconds=0.812),
        TrackNumbers(requests=200, success_rate=1.0, p99_seconds=0.7),
    )
    assert measurement.verdict is Verdict.FAIL
    assert measurement.broken == ("p99 812 ms is above the threshold 500 ms",)


def test_a_success_rate_well_below_the_stable_pods_fails() -> None:
    measurement = judged(
        TrackNumbers(requests=120, success_rate=0.801, p99_seconds=0.03),
        TrackNumbers(requests=200, success_rate=0.991, p99_seconds=0.03),
        min_success_rate=0.5,
    )
    assert measurement.broken == (
        "success rate 80.1% is 19.0 points below the stable pods' 99.1% (allowed: 1.0)",
    )


def test_a_drop_of_exactly_the_allowed_points_passes() -> None:
    measurement = judged(
        TrackNumbers(requests=100, success_rate=0.98, p99_seconds=0.03),
        TrackNumbers(requests=100, success_rate=0.99, p99_seconds=0.03),
        min_success_rate=0.9,
    )
    assert measurement.verdict is Verdict.PASS


def test_a_p99_many_times_the_stable_pods_fails() -> None:
    measurement = judged(
        TrackNumbers(requests=120, success_rate=1.0, p99_seconds=0.3),
        TrackNumbers(requests=200, success_rate=1.0, p99_seconds=0.1),
    )
    assert measurement.broken == (
        "p99 300 ms is 3.0 times the stable pods' 100 ms (allowed: 2 times)",
    )


def test_the_p99_ratio_is_ignored_for_tiny_latencies() -> None:
    measurement = judged(
        TrackNumbers(requests=120, success_rate=1.0, p99_seconds=0.04),
        TrackNumbers(requests=200, success_rate=1.0, p99_seconds=0.001),
    )
    assert measurement.verdict is Verdict.PASS


@pytest.mark.parametrize("stable_requests", [0, 9])
def test_without_stable_traffic_only_the_absolute_thresholds_apply(stable_requests: int) -> None:
    stable = TrackNumbers(requests=stable_requests, success_rate=1.0, p99_seconds=0.001)
    healthy_but_slower = TrackNumbers(requests=50, success_rate=0.99, p99_seconds=0.3)
    assert judged(healthy_but_slower, stable).verdict is Verdict.PASS
    failing = TrackNumbers(requests=50, success_rate=0.5, p99_seconds=0.3)
    assert judged(failing, stable).broken == ("success rate 50.0% is below the threshold 99.0%",)


def test_no_canary_traffic_is_inconclusive() -> None:
    measurement = judged(TrackNumbers())
    assert measurement.verdict is Verdict.INCONCLUSIVE
    assert measurement.broken == ()
    assert measurement.reason == (
        "no traffic on the canary: 0 requests in 30 s (at least 10 needed); "
        "the analysis cannot pass without traffic"
    )


def test_a_few_failed_requests_are_too_few_to_judge() -> None:
    measurement = judged(TrackNumbers(requests=4, success_rate=0.0, p99_seconds=0.9))
    assert measurement.verdict is Verdict.INCONCLUSIVE
    assert measurement.reason.startswith("too little traffic on the canary: 4 requests in 30 s")


def test_a_consumer_only_canary_is_judged_on_its_deliveries() -> None:
    measurement = judged(TrackNumbers(deliveries=40), TrackNumbers(deliveries=80))
    assert measurement.verdict is Verdict.PASS
    assert measurement.reason == (
        "canary healthy over 30 s: 0 requests and 40 event deliveries "
        "(too few requests for the HTTP checks: fewer than 10)"
    )


def test_a_canary_of_an_http_service_needs_requests_whatever_it_consumed() -> None:
    stable = TrackNumbers(requests=300, success_rate=1.0, p99_seconds=0.01, deliveries=80)
    measurement = judged(TrackNumbers(deliveries=40), stable)
    assert measurement.verdict is Verdict.INCONCLUSIVE
    assert measurement.reason == (
        "no HTTP traffic on the canary: 0 requests and 40 event deliveries in 30 s (at least "
        "10 requests needed: the stable pods answer requests); the analysis cannot pass "
        "without traffic"
    )


def test_too_few_requests_and_deliveries_are_inconclusive() -> None:
    measurement = judged(TrackNumbers(requests=3, success_rate=1.0, deliveries=4))
    assert measurement.verdict is Verdict.INCONCLUSIVE
    assert measurement.reason == (
        "too little traffic on the canary: 3 requests and 4 event deliveries in 30 s "
        "(at least 10 of either needed); the analysis cannot pass without traffic"
    )


def test_handler_failures_fail_whatever_the_traffic() -> None:
    measurement = judged(TrackNumbers(deliveries=3, handler_failures=1))
    assert measurement.verdict is Verdict.FAIL
    assert measurement.broken == (
        "1 event delivery failed in the handler (retried or dead-lettered), above the threshold 0",
    )


def test_dead_letters_fail_and_allowed_failures_do_not() -> None:
    canary = TrackNumbers(deliveries=50, handler_failures=2, dead_letters=2)
    consumer = TrackNumbers(deliveries=80)  # a consumer-only service
    measurement = judged(canary, consumer, max_handler_failures=2)
    assert measurement.broken == ("2 events dead-lettered, above the threshold 0",)
    allowed = judged(canary, consumer, max_handler_failures=2, max_dead_letters=2)
    assert allowed.verdict is Verdict.PASS


def test_extrapolated_fractions_of_a_failure_do_not_count() -> None:
    canary = TrackNumbers(requests=50, success_rate=1.0, deliveries=50, handler_failures=0.3)
    assert judged(canary).verdict is Verdict.PASS


def test_every_broken_threshold_is_listed() -> None:
    canary = TrackNumbers(
        requests=50, success_rate=0.5, p99_seconds=2.0, deliveries=10, handler_failures=3
    )
    measurement = judged(canary)
    assert measurement.verdict is Verdict.FAIL
    assert len(measurement.broken) == 5
    assert measurement.reason == (
        "the canary broke 5 thresholds in 30 s: " + "; ".join(measurement.broken)
    )


def test_the_measurement_is_json_for_events() -> None:
    measured = judged(TrackNumbers(requests=12, success_rate=0.75, p99_seconds=None))
    as_json = measurement_json(measured).model_dump(mode="json")
    assert json.loads(json.dumps(as_json)) == as_json
    assert as_json["verdict"] == "fail"
    assert as_json["canary"]["success_rate"] == 0.75
    assert as_json["canary"]["p99_seconds"] is None
    assert as_json["broken"] == list(measured.broken)
    assert as_json["window_seconds"] == WINDOW


# pod_targets(): the relabelling a Kubernetes pod discovery would do


def pod(name: str, labels: dict[str, str], *, phase: str = "Running", port: str = "http") -> Any:
    return {
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {"containers": [{"ports": [{"name": port, "containerPort": 8000}]}]},
        "status": {"phase": phase, "podIP": f"10.0.0.{len(name)}"},
    }


def test_pod_targets_label_the_flotilla_pods_by_track() -> None:
    flotilla = {"app.kubernetes.io/part-of": "flotilla", "app.kubernetes.io/name": "order"}
    pods = [
        pod("order-a", flotilla),
        pod("order-canary", {**flotilla, "flotilla.dev/track": "canary"}),
        pod("other", {"app.kubernetes.io/name": "other"}),
        pod("order-done", flotilla, phase="Succeeded"),
        pod("order-no-http-port", flotilla, port="grpc"),
    ]
    assert pod_targets(pods) == [
        (
            "10.0.0.7:8000",
            {"namespace": "shop", "service": "order", "pod": "order-a", "track": "stable"},
        ),
        (
            "10.0.0.12:8000",
            {"namespace": "shop", "service": "order", "pod": "order-canary", "track": "canary"},
        ),
    ]
    assert pod_targets(pods, namespaces=["elsewhere"]) == []


# measure() with a real Prometheus scraping real processes

SCRAPE_INTERVAL = 1.0
REQUESTS = 100
HANG_UPS = 10  # of the payment canary's clients, mid-body


@dataclass(frozen=True)
class Sample:
    """One sample service process: its labels in Prometheus and the 500s it answers (a share of
    its requests, or its first ones in a burst), and how many of its clients hang up mid-body."""

    service: str
    track: str
    error_share: float = 0.0
    burst_errors: int = 0
    only_probes: bool = False
    hang_ups: int = 0


SAMPLES = [
    Sample("order", "canary", error_share=0.2),
    Sample("order", "stable"),
    Sample("payment", "canary", hang_ups=HANG_UPS),
    Sample("payment", "stable"),
    Sample("auth", "canary", only_probes=True),
    Sample("gateway", "canary", burst_errors=3),
]


@dataclass
class ScrapedStack:
    prometheus: PrometheusServer
    queries: PrometheusQueries


def sample_process(sample: Sample, directory: Path) -> ServiceProcess:
    return ServiceProcess(
        f"{sample.service}-{sample.track}",
        [sys.executable, __file__],
        directory,
        env={"SERVICE_ENVIRONMENT": "development", "OTEL_SDK_DISABLED": "true"},
    )


async def drive(client: httpx.AsyncClient, sample: Sample, process: ServiceProcess) -> None:
    """REQUESTS requests over about 3 s, the sample's 500s among them."""
    every = round(1 / sample.error_share) if sample.error_share else 0
    for number in range(1, REQUESTS + 1):
        failing = number <= sample.burst_errors or (every and number % every == 0)
        if sample.only_probes:
            path = "/healthz" if number % 2 else "/readyz"
        else:
            path = "/work?status=500" if failing else "/work"
        await client.get(process.base_url + path)
        # The burst's errors come together, so that one scrape sees them all.
        if number > sample.burst_errors:
            await asyncio.sleep(0.03)
    partial = request_head("POST", "/work", "Content-Length: 100") + b"part of it"
    for _ in range(sample.hang_ups):
        await hang_up_after(process.port, partial)  # kit counts each 499


async def wait_until_scraped(queries: PrometheusQueries, sample: Sample, count: int) -> None:
    """Until Prometheus has scraped all ``count`` requests the sample process answered."""
    route = "/healthz|/readyz" if sample.only_probes else "/work"
    matchers = selector("t", sample.service, sample.track, f'route=~"{route}"')
    seen = f"sum(http_requests_total{matchers})"
    deadline = time.monotonic() + 15
    while (await queries.value(seen) or 0) < count:
        assert time.monotonic() < deadline, f"{sample} not scraped: {await queries.value(seen)}"
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PrometheusServer, list[ServiceProcess]]]:
    """Prometheus and the sample processes it scrapes, started side by side."""
    directory = tmp_path_factory.mktemp("samples")
    processes = [sample_process(sample, directory) for sample in SAMPLES]
    targets: list[Target] = [
        (f"127.0.0.1:{process.port}", {"namespace": "t", "service": s.service, "track": s.track})
        for s, process in zip(SAMPLES, processes, strict=True)
    ]
    prometheus = PrometheusServer(
        tmp_path_factory.mktemp("prometheus"), targets, scrape_interval=SCRAPE_INTERVAL
    )
    try:
        prometheus.start()
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(ServiceProcess.start, processes))
        prometheus.wait_for_targets(len(targets))
        yield prometheus, processes
    finally:
        for process in processes:
            process.stop()
        prometheus.stop()


@pytest.fixture(scope="module")
async def scraped(
    stack: tuple[PrometheusServer, list[ServiceProcess]],
) -> AsyncIterator[ScrapedStack]:
    """The stack after the sample processes served their traffic and Prometheus scraped it all."""
    prometheus, processes = stack
    async with (
        PrometheusQueries(prometheus.url, scrape_interval_seconds=SCRAPE_INTERVAL) as queries,
        httpx.AsyncClient() as client,
    ):
        await asyncio.gather(
            *(drive(client, s, p) for s, p in zip(SAMPLES, processes, strict=True))
        )
        await asyncio.gather(
            *(wait_until_scraped(queries, s, REQUESTS + s.hang_ups) for s in SAMPLES)
        )
        yield ScrapedStack(prometheus, queries)


async def test_a_canary_answering_one_in_five_with_500_fails(scraped: ScrapedStack) -> None:
    measurement = await measure(scraped.queries.numbers, "t", "order", WINDOW, DEFAULTS)
    assert measurement.verdict is Verdict.FAIL, measurement.reason
    assert measurement.canary.requests == pytest.approx(REQUESTS)
    assert measurement.canary.success_rate == pytest.approx(0.8, abs=0.01)
    assert measurement.stable.success_rate == 1.0
    assert measurement.broken[0] == "success rate 80.0% is below the threshold 99.0%"
    assert "20.0 points below the stable pods' 100.0%" in measurement.broken[1]


async def test_a_burst_of_errors_in_a_fresh_series_counts(scraped: ScrapedStack) -> None:
    # Its 500 series is born with the burst and never grows: increase() would count 0 errors.
    measurement = await measure(scraped.queries.numbers, "t", "gateway", WINDOW, DEFAULTS)
    assert measurement.canary.success_rate == pytest.approx(0.97)
    assert measurement.broken == ("success rate 97.0% is below the threshold 99.0%",)


async def test_a_healthy_canary_passes_on_real_metrics(scraped: ScrapedStack) -> None:
    measurement = await measure(scraped.queries.numbers, "t", "payment", WINDOW, DEFAULTS)
    assert measurement.verdict is Verdict.PASS, measurement.reason
    assert measurement.canary.requests == pytest.approx(REQUESTS + HANG_UPS)
    assert measurement.stable.requests == pytest.approx(REQUESTS)
    assert measurement.canary.p99_seconds is not None
    assert 0 < measurement.canary.p99_seconds < DEFAULTS.max_p99_seconds


async def test_a_canary_that_only_answers_probes_is_inconclusive(scraped: ScrapedStack) -> None:
    measurement = await measure(scraped.queries.numbers, "t", "auth", WINDOW, DEFAULTS)
    assert measurement.verdict is Verdict.INCONCLUSIVE, measurement.reason
    assert measurement.canary.requests == 0
    assert measurement.reason.startswith("no traffic on the canary: 0 requests in 30 s")


async def test_clients_hanging_up_are_traffic_and_no_failure_of_the_canary(
    scraped: ScrapedStack,
) -> None:
    """499 (the client closed the connection) is not 5xx: the errors' status=~"5.." leaves it
    out, and the requests count it as traffic of its route."""
    hung_up = selector("t", "payment", "canary", 'status="499"', 'route="/work"')
    assert await scraped.queries.value(f"sum(http_requests_total{hung_up})") == HANG_UPS
    measurement = await measure(scraped.queries.numbers, "t", "payment", WINDOW, DEFAULTS)
    assert measurement.verdict is Verdict.PASS, measurement.reason
    assert measurement.canary.requests == pytest.approx(REQUESTS + HANG_UPS)
    assert measurement.canary.success_rate == 1.0


async def test_a_query_prometheus_refuses_names_it(scraped: ScrapedStack) -> None:
    with pytest.raises(PrometheusError, match=r"refused the query 'sum\(' \(400\): bad_data"):
        await scraped.queries.value("sum(")


async def test_a_window_shorter_than_two_scrapes_is_refused(scraped: ScrapedStack) -> None:
    with pytest.raises(ValueError, match="fewer than two scrapes"):
        await scraped.queries.numbers("t", "order", "canary", 1.5)


async def test_an_unreachable_prometheus_names_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with PrometheusQueries(url) as queries:
        with pytest.raises(PrometheusError, match=f"cannot reach Prometheus at {url}"):
            await queries.numbers("t", "order", "canary", WINDOW)


if __name__ == "__main__":
    serve(SAMPLE)
