"""OpenTelemetry tracing: provider set-up, and W3C trace context carried in message headers."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from kit.settings import TelemetrySettings

_provider: TracerProvider | None = None


def configure_tracing(service: str, settings: TelemetrySettings) -> TracerProvider:
    """Install the process-wide tracer provider (once); export over OTLP when an endpoint is set."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if settings.exporter_otlp_endpoint and not settings.sdk_disabled:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(_provider)
    return _provider


def add_span_processor(processor: SpanProcessor) -> None:
    """Attach an extra span processor (tests use an in-memory exporter)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        raise RuntimeError("configure_tracing() must run before add_span_processor()")
    provider.add_span_processor(processor)


def inject_trace_headers(headers: dict[str, str]) -> dict[str, str]:
    """Write the current trace context (traceparent, tracestate) into message headers."""
    propagate.inject(headers)
    return headers


def extract_trace_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    """Read a W3C trace context from message headers; an empty context when there is none."""
    return propagate.extract(dict(headers or {}))


@cache
def tracer() -> trace.Tracer:
    """The tracer the chassis uses for its own spans.

    Cached: the SDK makes a new tracer per call. One made before ``configure_tracing`` is a proxy
    that follows the provider installed later.
    """
    return trace.get_tracer("kit")
