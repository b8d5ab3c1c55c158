"""Traces across agent hops (OpenTelemetry), written once for every mechanism.

W3C `traceparent`/`tracestate` travel in HTTP headers (the request that publishes, a
forward to the owner) and in Kafka record headers (every record the bus produces), so a
planner -> tool agent -> result chain is one trace across workers and agents.

Off and free unless configured: setup() installs a tracer provider only when
OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set, exporting over OTLP/HTTP, or
when AGENTBUS_TRACE_FILE names a file (finished spans as JSON lines, for tests and local
debugging). Otherwise nothing is installed and every helper here returns after one check.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Link, Span, SpanKind

from bus.settings import Settings

__all__ = [
    "TRACE_HEADERS",
    "JsonLinesExporter",
    "SpanKind",
    "enabled",
    "from_record",
    "hand_over",
    "http_headers",
    "record_headers",
    "setup",
    "shutdown",
    "span",
    "traced_headers",
]

TRACE_HEADERS = ("traceparent", "tracestate")  # plain W3C names: not bus.* (reserved for the bus)
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_OFF: AbstractContextManager[None] = nullcontext()


@dataclass
class _State:
    provider: TracerProvider | None = None
    tracer: trace.Tracer | None = None


_state = _State()


def enabled() -> bool:
    return _state.tracer is not None


def setup(settings: Settings, worker: str, env: Mapping[str, str] = os.environ) -> bool:
    """Install the tracer provider if an OTLP endpoint or a trace file is configured; True
    if it did. Without either, the global provider stays OpenTelemetry's no-op one."""
    endpoint = any(env.get(name) for name in ENDPOINT_VARS)
    if not endpoint and settings.trace_file is None:
        return False
    resource = Resource.create(
        {"service.name": env.get("OTEL_SERVICE_NAME", "agentbus"), "service.instance.id": worker}
    )
    provider = TracerProvider(resource=resource)
    if endpoint:
        # Imported here: the exporter pulls in protobuf and requests, which a worker that
        # does not export should not pay for.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads OTEL_* itself
    if settings.trace_file is not None:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(settings.trace_file)))
    trace.set_tracer_provider(provider)
    _state.provider, _state.tracer = provider, provider.get_tracer("agentbus")
    return True


def shutdown() -> None:
    """Flush what is still batched (a stopping worker)."""
    if _state.provider is not None:
        _state.provider.shutdown()


def span(
    name: str,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    attributes: Mapping[str, str | int] | None = None,
    links: Sequence[Link] = (),
) -> AbstractContextManager[Span | None]:
    """A span made current for the block (None when tracing is off); its parent is the
    current span unless `parent` (a context extracted from headers) is given."""
    if _state.tracer is None:
        return _OFF
    return _state.tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {}), links=links
    )


def traced_headers(carrier: Mapping[str, str]) -> Context | None:
    """The context a caller's traceparent names; None without one (or when tracing is off)."""
    if _state.tracer is None or "traceparent" not in carrier:
        return None
    return propagate.extract(carrier)


def http_headers() -> dict[str, str]:
    """traceparent/tracestate of the current span, for a request to another worker."""
    carrier: dict[str, str] = {}
    if _state.tracer is not None:
        propagate.inject(carrier)
    return carrier


def record_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """A record's headers with the current span's traceparent/tracestate added, unless it
    has a traceparent already (a caller's own, or one the bus kept from an earlier hop)."""
    if _state.tracer is None or any(k == "traceparent" for k, _ in headers):
        return headers
    added = http_headers()
    return headers + [(k, v.encode()) for k, v in added.items()] if added else headers


def from_record(headers: Sequence[tuple[str, bytes]]) -> Context | None:
    """The context a Kafka record's traceparent names; None without one or when off."""
    if _state.tracer is None:
        return None
    found = {k: v.decode("latin-1") for k, v in headers if k in TRACE_HEADERS}
    return propagate.extract(found) if "traceparent" in found else None


def hand_over(headers: dict[str, str], name: str, attributes: Mapping[str, str | int]) -> None:
    """A consumer span for a record handed to a client: the child of the record's
    traceparent, linked to the current span (the request that pulls it). The headers'
    traceparent then names this span, so the client continues the trace from the delivery.
    Nothing for a record without a traceparent, or when tracing is off."""
    parent = traced_headers(headers)
    if parent is None:
        return
    with span(name, SpanKind.CONSUMER, parent, attributes, links=_current_link()):
        headers.update(http_headers())


def _current_link() -> list[Link]:
    """A link to the span that is current now (e.g. the request that pulls), if any."""
    current = trace.get_current_span().get_span_context()
    return [Link(current)] if current.is_valid else []


class JsonLinesExporter(SpanExporter):
    """Each finished span as one JSON line appended to a file: readable by a test in
    another process (the fleet's workers may share the file: one write() per line)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(_as_dict(s)) + "\n" for s in spans)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _as_dict(s: ReadableSpan) -> dict[str, object]:
    ctx, parent = s.get_span_context(), s.parent
    assert ctx is not None
    return {
        "name": s.name,
        "kind": s.kind.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{parent.span_id:016x}" if parent is not None else None,
        "links": [f"{link.context.trace_id:032x}-{link.context.span_id:016x}" for link in s.links],
        "start": s.start_time,
        "end": s.end_time,
        "worker": s.resource.attributes.get("service.instance.id"),
        "attributes": {k: v for k, v in (s.attributes or {}).items() if isinstance(v, str | int)},
        "status": s.status.status_code.name,
    }
