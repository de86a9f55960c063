"""Prometheus metrics: HTTP requests by route template, and event bus activity."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests handled.", ["method", "route", "status"]
)
# Requests the server refused before the application saw them (kit.edge_limits): a head too
# large (431, 414) or too slow (408). They have no route, so they are counted apart.
HTTP_REFUSED = Counter(
    "http_requests_refused_total",
    "Requests refused before the application saw them, by status and reason.",
    ["status", "reason"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PUBLISHED = Counter(
    "events_published_total", "Events published to JetStream.", ["type", "outcome"]
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Event deliveries handled, by outcome (ok, duplicate, retry, dead_lettered).",
    ["consumer", "type", "outcome"],
)
EVENT_HANDLER_LATENCY = Histogram(
    "event_handler_duration_seconds",
    "Event handler latency.",
    ["consumer", "type"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENT_REDELIVERIES = Counter(
    "event_redeliveries_total", "Deliveries that were not the first attempt.", ["consumer"]
)
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered_total", "Events moved to the dead-letter stream.", ["consumer", "reason"]
)


async def metrics_endpoint(_: Request) -> Response:
    """Serve the process's metrics in the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
