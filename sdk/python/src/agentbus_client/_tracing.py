"""W3C trace context: when opentelemetry-api is installed (the `otel` extra), every request
carries the current span's `traceparent` (and `tracestate`), so a bus worker's logs and the
agent's spans line up. Without it, requests carry no trace headers and nothing is imported."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["trace_headers"]


def _load_injector() -> Callable[[dict[str, str]], None] | None:
    try:
        from opentelemetry import propagate  # optional: the otel extra
    except ImportError:
        return None

    def inject(carrier: dict[str, str]) -> None:
        propagate.inject(carrier)

    return inject


_INJECT = _load_injector()


def trace_headers() -> dict[str, str]:
    """traceparent/tracestate of the current span; {} without OpenTelemetry or a span."""
    if _INJECT is None:
        return {}
    carrier: dict[str, str] = {}
    _INJECT(carrier)
    return carrier
