"""OpenTelemetry tracing: provider set-up, and W3C trace context carried in message headers.

While no span processor is attached (no OTLP endpoint configured, no test exporter), spans are
not recorded: each request, publish and delivery still gets its trace and span ids (logs carry
them, and the ``traceparent`` passed on keeps the sampling decision the SDK would make), but
none of the SDK's span bookkeeping, which nothing would read. Recording starts as soon as a
processor is added.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.util import types

from kit.settings import TelemetrySettings


class OnDemandTracerProvider(TracerProvider):
    """The SDK's provider, whose tracers record spans only once a processor is attached."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource=resource)
        self.records = False

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self.records = True

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace.Tracer:
        sdk_tracer = super().get_tracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )
        # OTEL_SDK_DISABLED gives a no-op tracer: nothing to record, no ids either.
        return _Tracer(self, sdk_tracer) if isinstance(sdk_tracer, SdkTracer) else sdk_tracer


class _Tracer(trace.Tracer):
    """The SDK's tracer while the provider records; ids and the sampling decision only before."""

    def __init__(self, provider: OnDemandTracerProvider, recording: trace.Tracer) -> None:
        self._provider = provider
        self._recording = recording

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        if self._provider.records:
            return self._recording.start_span(
                name, context, kind, attributes, links, start_time, record_exception,
                set_status_on_exception,
            )  # fmt: skip
        # What the SDK does before it builds a recording span: the trace id (the parent's or a
        # new one), a new span id, and the flags of the sampler's decision.
        parent = trace.get_current_span(context).get_span_context()
        ids = self._provider.id_generator
        if parent.is_valid:
            trace_id, random_id = parent.trace_id, parent.trace_flags.random_trace_id
        else:
            trace_id, random_id = ids.generate_trace_id(), ids.is_trace_id_random()
        decision = self._provider.sampler.should_sample(
            context, trace_id, name, kind, attributes, links
        )
        sampled = decision.decision is Decision.RECORD_AND_SAMPLE
        flags = trace.TraceFlags.SAMPLED if sampled else 0
        if random_id:
            flags |= trace.TraceFlags.RANDOM_TRACE_ID
        span_context = trace.SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=trace.TraceFlags(flags),
            trace_state=decision.trace_state,
        )
        return trace.NonRecordingSpan(span_context)

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception,
        )  # fmt: skip
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recording, name)


_provider: TracerProvider | None = None


def configure_tracing(service: str, settings: TelemetrySettings) -> TracerProvider:
    """Install the process-wide tracer provider (once); export over OTLP when an endpoint is set."""
    global _provider
    if _provider is None:
        _provider = OnDemandTracerProvider(Resource.create({"service.name": service}))
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
