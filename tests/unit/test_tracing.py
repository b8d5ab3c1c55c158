"""bus/tracing.py: off and free without configuration; when on, records and deliveries
carry the trace on (the fleet-wide test is tests/integration/test_tracing.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bus import tracing
from bus.settings import Settings

TRACE_ID, SPAN_ID = 0xA1B2, 0xC3D4
TRACEPARENT = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"


def test_without_an_endpoint_or_a_trace_file_nothing_is_installed() -> None:
    assert tracing.setup(Settings(), "http://w1", env={}) is False
    assert not tracing.enabled()
    # Still OpenTelemetry's default: a proxy to the no-op tracer, no SDK provider.
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    headers = [("bus.kind", b"message")]
    assert tracing.record_headers(headers) is headers
    assert tracing.http_headers() == {}
    assert tracing.traced_headers({"traceparent": TRACEPARENT}) is None
    with tracing.span("x") as span:
        assert span is None


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on, with a provider of the test's own (the process-wide one is left alone)."""
    found = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(found))
    tracing._state.provider, tracing._state.tracer = provider, provider.get_tracer("test")
    yield found
    tracing._state.provider = tracing._state.tracer = None


def test_a_span_continues_a_callers_traceparent(exporter: InMemorySpanExporter) -> None:
    parent = tracing.traced_headers({"traceparent": TRACEPARENT})
    with tracing.span("POST /x", tracing.SpanKind.SERVER, parent):
        with tracing.span("kafka produce", tracing.SpanKind.PRODUCER):
            stamped = tracing.record_headers([("bus.kind", b"message")])
            kept = tracing.record_headers([("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")])
    produce, server = exporter.get_finished_spans()
    assert server.context is not None and produce.context is not None and produce.parent is not None
    assert server.context.trace_id == TRACE_ID and server.parent is not None
    assert server.parent.span_id == SPAN_ID
    assert produce.parent.span_id == server.context.span_id
    found = dict((k, v.decode()) for k, v in stamped)
    assert found["traceparent"] == f"00-{TRACE_ID:032x}-{produce.context.span_id:016x}-01"
    assert [k for k, _ in kept] == ["traceparent"], "a record's own traceparent is kept"


def test_a_delivery_is_a_child_of_its_record_and_hands_its_own_context_on(
    exporter: InMemorySpanExporter,
) -> None:
    headers = {"bus.kind": "tool_call", "traceparent": TRACEPARENT}
    with tracing.span("POST /pull", tracing.SpanKind.SERVER):
        tracing.hand_over(headers, "deliver", {"agentbus.subscription": "s"})
    deliver, pull = exporter.get_finished_spans()
    assert deliver.parent is not None and deliver.parent.span_id == SPAN_ID
    assert deliver.context is not None and pull.context is not None
    assert [link.context.span_id for link in deliver.links] == [pull.context.span_id]
    assert headers["traceparent"] == f"00-{TRACE_ID:032x}-{deliver.context.span_id:016x}-01"
    untraced = {"bus.kind": "message"}
    tracing.hand_over(untraced, "deliver", {})
    assert untraced == {"bus.kind": "message"} and len(exporter.get_finished_spans()) == 2


def test_the_trace_file_gets_one_json_line_per_span(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(tracing.JsonLinesExporter(path)))
    with provider.get_tracer("test").start_as_current_span("outer"):
        with provider.get_tracer("test").start_as_current_span("inner"):
            pass
    inner, outer = (json.loads(line) for line in path.read_text().splitlines())
    assert (inner["name"], outer["name"]) == ("inner", "outer")
    assert inner["parent_id"] == outer["span_id"] and outer["parent_id"] is None
    assert inner["trace_id"] == outer["trace_id"]
