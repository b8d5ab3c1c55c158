"""Prometheus metrics of one worker, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
