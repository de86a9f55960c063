"""A track's numbers from Prometheus: PromQL over the metrics every service exports (kit.metrics),
selected by the target labels namespace, service and track.

Counting over a window. ``increase(c[w])`` sees only growth between the samples inside the
window and extrapolates each series from its own first and last sample. That misses what canary
analysis looks for: a series born in the window (the first 5xx of a route, every series of a pod
that just started) loses the value of its first sample, so a burst of 3 errors scraped at once
and never repeated counts 0 (tests/deployer/test_canary_analysis.py has that canary); and the
extrapolation guesses (a fresh pod's 100 requests counted 103.2 when tried). Each counter is
therefore counted as its value now minus its value at the window's start, a series absent at
the start counting from 0; only a series that went down (its process restarted) falls back to
``increase()``, and one that vanished within the window (its pod went away) counts by
``increase()`` over the samples it left.

Both ends are the latest scrape at or before them, so the window is as sharp as the scrape
interval; a window must span at least two scrapes (``window_seconds >= 2 *
scrape_interval_seconds``, which ``numbers`` enforces), and four or more give steadier numbers.
"""

from __future__ import annotations

import asyncio
import json
import math
from types import TracebackType
from typing import Any

import httpx

from deployer.canary.analysis import TrackNumbers

PROBE_ROUTES = "/healthz|/readyz|/metrics"
# kit's middleware labels a request no route template matched "<unmatched>" (404s of unknown
# paths); they are not the canary's traffic, and only their 5xx say something about it. The
# probes and Prometheus's own scrapes have routes of their own (PROBE_ROUTES), left out too.
UNMATCHED_ROUTE = "<unmatched>"
SERVER_ERRORS = 'status=~"5.."'
FAILED_OUTCOMES = "retry|dead_lettered"


def selector(namespace: str, service: str, track: str, *matchers: str) -> str:
    """The label selector of one track of a service, with further ``matchers``."""
    labels = {"namespace": namespace, "service": service, "track": track}
    own = [f"{name}={json.dumps(value)}" for name, value in labels.items()]
    return "{" + ", ".join([*own, *matchers]) + "}"


def window_increase(series: str, window_seconds: float) -> str:
    """Per series of the counter selected by ``series``: how much it grew over the window (see
    the module's docstring)."""
    # Whole milliseconds: PromQL durations take no fractions and no exponent (a soak of days
    # would print as 1.2e+06s).
    window = f"{round(window_seconds * 1000)}ms"
    at_start = f"({series} offset {window} or {series} * 0)"
    return f"(({series} - {at_start}) >= 0 or increase({series}[{window}]))"


def queries(namespace: str, service: str, track: str, window_seconds: float) -> dict[str, str]:
    """The PromQL of each number of a track, by TrackNumbers field (and ``errors``: 5xx)."""

    def grown(metric: str, *matchers: str) -> str:
        return window_increase(
            metric + selector(namespace, service, track, *matchers), window_seconds
        )

    routed = f'route!~"{PROBE_ROUTES}|{UNMATCHED_ROUTE}"'
    unmatched_errors = (f'route="{UNMATCHED_ROUTE}"', SERVER_ERRORS)

    def http_requests(*matchers: str) -> str:
        counted = grown("http_requests_total", routed, *matchers)
        return f"sum({counted} or {grown('http_requests_total', *unmatched_errors)})"

    failed = f'outcome=~"{FAILED_OUTCOMES}"'
    buckets = grown("http_request_duration_seconds_bucket", routed)
    return {
        "requests": http_requests(),
        "errors": http_requests(SERVER_ERRORS),
        "p99_seconds": f"histogram_quantile(0.99, sum by (le) ({buckets}))",
        "deliveries": f"sum({grown('events_consumed_total')})",
        "handler_failures": f"sum({grown('events_consumed_total', failed)})",
        "dead_letters": f"sum({grown('events_dead_lettered_total')})",
    }


class PrometheusError(RuntimeError):
    """Prometheus could not be asked or refused a query; the message says what to check."""


class PrometheusQueries:
    """Instant queries against one Prometheus's HTTP API (``<url>/api/v1/query``)."""

    def __init__(
        self, url: str, *, scrape_interval_seconds: float = 2.0, timeout_seconds: float = 10.0
    ) -> None:
        self.url = url.rstrip("/")
        self.scrape_interval_seconds = scrape_interval_seconds
        self._client = httpx.AsyncClient(timeout=timeout_seconds)

    async def __aenter__(self) -> PrometheusQueries:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def value(self, promql: str, at: float | None = None) -> float | None:
        """The one value of an instant query (at the Unix time ``at``, now when None): None when
        the result is empty or not a number (NaN: a quantile of no observations)."""
        params = {"query": promql} | ({"time": f"{at:.3f}"} if at is not None else {})
        endpoint = f"{self.url}/api/v1/query"
        try:
            response = await self._client.get(endpoint, params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(
                f"cannot reach Prometheus at {self.url} ({type(exc).__name__}: {exc}); check that "
                f"it runs and that the URL is right (GET {self.url}/-/ready answers 200)"
            ) from exc
        result = _vector(response, promql)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(
                f"the query {promql!r} returned {len(result)} series, not one: it must aggregate"
            )
        number = float(result[0]["value"][1])
        return number if math.isfinite(number) else None

    async def numbers(
        self,
        namespace: str,
        service: str,
        track: str,
        window_seconds: float,
        at: float | None = None,
    ) -> TrackNumbers:
        """``track``'s numbers over the ``window_seconds`` before ``at`` (now when None). No
        series at all counts as no traffic (0 requests)."""
        shortest = 2 * self.scrape_interval_seconds
        if window_seconds < shortest:
            raise ValueError(
                f"a window of {window_seconds:g} s spans fewer than two scrapes at the "
                f"{self.scrape_interval_seconds:g} s scrape interval: use at least {shortest:g} s"
            )
        promql = queries(namespace, service, track, window_seconds)
        values = dict(
            zip(
                promql,
                await asyncio.gather(*(self.value(query, at) for query in promql.values())),
                strict=True,
            )
        )
        requests = values["requests"] or 0.0
        errors = min(values["errors"] or 0.0, requests)
        return TrackNumbers(
            requests=requests,
            success_rate=(requests - errors) / requests if requests > 0 else None,
            p99_seconds=values["p99_seconds"],
            deliveries=values["deliveries"] or 0.0,
            handler_failures=values["handler_failures"] or 0.0,
            dead_letters=values["dead_letters"] or 0.0,
        )


def _vector(response: httpx.Response, promql: str) -> list[dict[str, Any]]:
    """The samples of an instant vector answer; PrometheusError for anything else."""
    where = f"Prometheus at {response.request.url.copy_with(query=None)}"
    try:
        body = response.json()
    except ValueError:
        raise PrometheusError(
            f"{where} answered {response.status_code} with no JSON ({response.text[:200]!r}): "
            "is that URL a Prometheus server?"
        ) from None
    if body.get("status") != "success":
        raise PrometheusError(
            f"{where} refused the query {promql!r} ({response.status_code}): "
            f"{body.get('errorType')}: {body.get('error')}"
        )
    data = body.get("data", {})
    if data.get("resultType") != "vector":
        raise PrometheusError(
            f"{where} answered {promql!r} with a {data.get('resultType')}, not a vector"
        )
    result: list[dict[str, Any]] = data["result"]
    return result
