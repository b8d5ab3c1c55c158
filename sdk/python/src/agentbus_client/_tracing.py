"""W3C trace context: when opentelemetry-api is installed (the `otel` extra), every request
carries the current span's `traceparent` (and `tracestate`), so a bus worker's logs and the
agent's spans line up; and an AgentRuntime handles each message in the trace its
`traceparent` header names, so the agent's answer is a child of the message it answers.
Without it, requests carry no trace headers and nothing is imported."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

__all__ = ["continued", "trace_headers"]


def _load_injector() -> Callable[[dict[str, str]], None] | None:
    try:
        from opentelemetry import propagate  # optional: the otel extra
    except ImportError:
        return None

    def inject(carrier: dict[str, str]) -> None:
        propagate.inject(carrier)

    return inject


def _load_continuer() -> Callable[[Mapping[str, str], str], AbstractContextManager[Any]] | None:
    try:
        from opentelemetry import propagate, trace  # optional: the otel extra
    except ImportError:
        return None
    tracer = trace.get_tracer("agentbus_client")

    @contextmanager
    def continue_from(headers: Mapping[str, str], name: str) -> Iterator[None]:
        # With only the API installed the span is a non-recording one around the message's
        # context: requests made in the block still carry that trace.
        parent = propagate.extract(dict(headers))
        with tracer.start_as_current_span(name, context=parent, kind=trace.SpanKind.CONSUMER):
            yield

    return continue_from


_INJECT = _load_injector()
_CONTINUE = _load_continuer()


def trace_headers() -> dict[str, str]:
    """traceparent/tracestate of the current span; {} without OpenTelemetry or a span."""
    if _INJECT is None:
        return {}
    carrier: dict[str, str] = {}
    _INJECT(carrier)
    return carrier


def continued(headers: Mapping[str, str], name: str) -> AbstractContextManager[Any]:
    """A block run in the trace a message's traceparent names (a span `name` in it); nothing
    without OpenTelemetry or a traceparent."""
    if _CONTINUE is None or "traceparent" not in headers:
        return nullcontext()
    return _CONTINUE(headers, name)
