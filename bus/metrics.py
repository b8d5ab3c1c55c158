"""Prometheus metrics of one worker, served at /metrics."""

from __future__ import annotations

import gc
import time

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ERRORS",
    "HTTP_REQUESTS",
    "PUBLISH_LATENCY",
    "QUOTA_REJECTIONS",
    "RECORDS_DELIVERED",
    "RECORDS_PUBLISHED",
    "SSE_CLIENTS",
]

HTTP_REQUESTS = Counter(
    "agentbus_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
ERRORS = Counter("agentbus_errors_total", "Error responses by stable error code", ["code"])
PUBLISH_LATENCY = Histogram(
    "agentbus_publish_latency_seconds",
    "Time from request to broker acknowledgement of every record in it",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RECORDS_PUBLISHED = Counter("agentbus_records_published_total", "Records acknowledged by Kafka")
RECORDS_DELIVERED = Counter("agentbus_records_delivered_total", "Records written to subscribers", ["via"])
SSE_CLIENTS = Gauge("agentbus_sse_clients", "Open SSE subscriber connections on this worker")
QUOTA_REJECTIONS = Counter(
    "agentbus_quota_rejections_total", "Requests refused (or deliveries paused) over a quota", ["dimension"]
)
GC_PAUSES = Histogram(
    "agentbus_gc_pause_seconds",
    "Python garbage collections, by generation: the event loop stands still meanwhile",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
_gc_started: list[float] = [0.0]


def time_gc(phase: str, info: dict[str, int]) -> None:
    """A gc callback: observe how long each collection stood the worker still."""
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        GC_PAUSES.labels(str(info["generation"])).observe(time.perf_counter() - _gc_started[0])


gc.callbacks.append(time_gc)
