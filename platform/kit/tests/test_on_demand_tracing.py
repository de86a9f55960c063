"""Spans are recorded only once a processor is attached; the trace goes on either way."""

from __future__ import annotations

import uuid

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kit.tracing import OnDemandTracerProvider


def _incoming(sampled: bool) -> tuple[str, dict[str, str]]:
    trace_id = uuid.uuid4().hex
    flags = "01" if sampled else "00"
    return trace_id, {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-{flags}"}


def test_without_a_processor_a_span_is_not_recorded_but_continues_the_trace() -> None:
    tracer = OnDemandTracerProvider(Resource.create({})).get_tracer("test")
    for sampled in (True, False):
        trace_id, headers = _incoming(sampled)
        with tracer.start_as_current_span("work", context=propagate.extract(headers)) as span:
            assert not span.is_recording()
            passed_on: dict[str, str] = {}
            propagate.inject(passed_on)
        context = span.get_span_context()
        assert format(context.trace_id, "032x") == trace_id
        assert context.span_id != int(headers["traceparent"].split("-")[2], 16)
        assert context.trace_flags.sampled is sampled
        assert passed_on["traceparent"].split("-")[1] == trace_id
        assert passed_on["traceparent"].endswith("-01" if sampled else "-00")


def test_a_root_span_without_a_processor_gets_fresh_sampled_ids() -> None:
    tracer = OnDemandTracerProvider(Resource.create({})).get_tracer("test")
    first = tracer.start_span("one").get_span_context()
    second = tracer.start_span("two").get_span_context()
    assert first.is_valid
    assert second.is_valid
    assert first.trace_id != second.trace_id
    assert first.trace_flags.sampled


def test_spans_are_recorded_once_a_processor_is_attached() -> None:
    provider = OnDemandTracerProvider(Resource.create({}))
    tracer = provider.get_tracer("test")  # obtained before the processor, as the kit's is
    with tracer.start_as_current_span("before"):
        pass
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id, headers = _incoming(sampled=True)
    with tracer.start_as_current_span(
        "after", context=propagate.extract(headers), kind=trace.SpanKind.CONSUMER
    ) as span:
        assert span.is_recording()
    finished: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    assert [s.name for s in finished] == ["after"]
    assert finished[0].context is not None
    assert format(finished[0].context.trace_id, "032x") == trace_id
    assert finished[0].kind is trace.SpanKind.CONSUMER
