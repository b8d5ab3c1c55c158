"""Prometheus metrics of one worker, served at /metrics: every metric is declared here.

Label sets are bounded: no label names a message, a conversation, a call or an agent.
A topic label is capped per worker (TOPIC_LABELS); per-subscription gauges are read at
scrape time from the dispatchers this worker runs (SampledGauges), so a subscription
that moved or was deleted leaves no stale series, and they are capped too.
"""

from __future__ import annotations

import collections
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

__all__ = [
    "AGENTS",
    "AGENT_LIVENESS_CHANGES",
    "APPROVALS",
    "APPROVAL_DECISIONS",
    "DEAD_LETTERS",
    "ERRORS",
    "FORWARDS",
    "FORWARD_LATENCY",
    "HEADER_TIMEOUTS",
    "HTTP_REQUESTS",
    "KAFKA_PRODUCE_ERRORS",
    "KAFKA_PRODUCE_LATENCY",
    "MAX_SUBSCRIPTION_SERIES",
    "MAX_TOPIC_SERIES",
    "OTHER",
    "PUBLISH_LATENCY",
    "QUOTA_REJECTIONS",
    "RECORDS_DELIVERED",
    "RECORDS_PUBLISHED",
    "SSE_CLIENTS",
    "STREAM_CHUNK_LATENCY",
    "SUBSCRIPTIONS",
    "TABLE_RECOVERY",
    "TOOL_CALLS",
    "TOPIC_LABELS",
    "TOPIC_RECORDS_DELIVERED",
    "TOPIC_RECORDS_PUBLISHED",
    "WORKER",
    "BoundedLabel",
    "Row",
    "SampledGauges",
    "count_delivered",
    "count_published",
    "forwarding",
    "producing",
]

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "agentbus_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HEADER_TIMEOUTS = Counter(
    "agentbus_http_header_timeouts_total",
    "Connections closed for not sending a request's headers within AGENTBUS_HEADER_TIMEOUT",
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


# -- bounded labels and gauges read at scrape time -----------------------------------------

OTHER = "_other"  # the label value of everything past a cap
MAX_TOPIC_SERIES = 200  # distinct topic label values per worker (per process life)
MAX_SUBSCRIPTION_SERIES = 100  # subscriptions named per worker per scrape: the most lagging


class BoundedLabel:
    """At most `limit` distinct values of a label in this process; later ones count as OTHER.

    Tenants create topics, so a topic label would otherwise grow without end. The first
    `limit` topics a worker sees keep their own series until it restarts (a deleted
    topic's counters stay, as counters do); the rest add up under OTHER."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(value)
        return value


Row = tuple[tuple[str, ...], tuple[float | None, ...]]  # label values, one value per family (None: none)


class SampledGauges(Collector):
    """Gauge families whose samples are read at scrape time by a reader that the module
    owning the state installs (read_from). A series exists only while its subject does,
    so nothing goes stale when a subscription moves to another worker or an agent is
    deleted. A reader that fails leaves its families empty for that scrape (and logs)."""

    def __init__(self, labels: Sequence[str], *families: tuple[str, str]) -> None:
        self.labels = list(labels)
        self.families = families
        self.reader: Callable[[], Iterable[Row]] | None = None
        REGISTRY.register(self)

    def read_from(self, reader: Callable[[], Iterable[Row]]) -> None:
        self.reader = reader

    def describe(self) -> Iterator[Metric]:
        return iter(self._empty())

    def collect(self) -> Iterator[Metric]:
        found = self._empty()
        try:
            rows = list(self.reader()) if self.reader is not None else []
        except Exception:
            log.warning("reading %s failed", self.families[0][0], exc_info=True)
            rows = []
        for labels, values in rows:
            for family, value in zip(found, values, strict=True):
                if value is not None:
                    family.add_metric(list(labels), value)
        return iter(found)

    def _empty(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(name, documentation, labels=self.labels)
            for name, documentation in self.families
        ]


# -- topics --------------------------------------------------------------------------------

TOPIC_LABELS = BoundedLabel(MAX_TOPIC_SERIES)
TOPIC_RECORDS_PUBLISHED = Counter(
    "agentbus_topic_records_published_total",
    "Records acknowledged by Kafka, by topic (namespace/tenant/name; _other past the cap)",
    ["topic"],
)
TOPIC_RECORDS_DELIVERED = Counter(
    "agentbus_topic_records_delivered_total",
    "Records handed to subscribers, by topic and way (sse: topic streams, pull: subscriptions)",
    ["topic", "via"],
)


def count_published(topics: Iterable[str]) -> None:
    """One record acknowledged for each topic id listed (one series update per topic)."""
    for topic, records in collections.Counter(topics).items():
        TOPIC_RECORDS_PUBLISHED.labels(TOPIC_LABELS(topic)).inc(records)


def count_delivered(topic: str, via: str, records: int) -> None:
    if records:
        TOPIC_RECORDS_DELIVERED.labels(TOPIC_LABELS(topic), via).inc(records)


# -- subscriptions -------------------------------------------------------------------------

SUBSCRIPTIONS = SampledGauges(
    ["subscription"],
    (
        "agentbus_subscription_lag_records",
        "Records of the source not acked yet by this subscription's clients (as GET .../lag's unacked)",
    ),
    ("agentbus_subscription_in_flight", "Records leased to a client and not settled yet"),
    (
        "agentbus_subscription_oldest_unacked_age_seconds",
        "Age (by record timestamp) of the oldest record not acked yet; absent when none is",
    ),
)
DEAD_LETTERS = Counter(
    "agentbus_dead_letters_total",
    "Records moved to a dead-letter topic (nacked: a client asked; max_deliveries: it ran out)",
    ["cause"],
)
for _cause in ("nacked", "max_deliveries"):
    DEAD_LETTERS.labels(_cause)  # a series from the start: increase() sees the first one


# -- agents, approvals, tool calls, streams ------------------------------------------------

LIVENESS_STATES = ("unknown", "alive", "late", "dead")
AGENTS = SampledGauges(["liveness"], ("agentbus_agents", "Agents this worker owns, by liveness"))
AGENT_LIVENESS_CHANGES = Counter(
    "agentbus_agent_liveness_changes_total", "Liveness changes announced, by the new liveness", ["to"]
)
for _state in LIVENESS_STATES:
    AGENT_LIVENESS_CHANGES.labels(_state)

APPROVALS = SampledGauges(
    [],
    ("agentbus_approvals_pending", "Approvals waiting for a decision, on the worker that owns them"),
    (
        "agentbus_approval_next_expiry_seconds",
        "Seconds until the soonest pending approval expires (negative: overdue); absent when none is",
    ),
)
APPROVAL_DECISIONS = Histogram(
    "agentbus_approval_decision_seconds",
    "From an approval's request to its decision, by outcome (approved, rejected, expired)",
    ["outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
)
TOOL_CALLS = Histogram(
    "agentbus_tool_call_seconds",
    "From a tool call's placement to its result, by status (ok, error, timed_out, cancelled, rejected)",
    ["status"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
STREAM_CHUNK_LATENCY = Histogram(
    "agentbus_stream_chunk_latency_seconds",
    "From the owner accepting a write of stream chunks to Kafka having them and the owner"
    " handing them to the stream's live readers",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


# -- mechanisms: forwards, Kafka, tables, the worker ----------------------------------------

FORWARDS = Counter(
    "agentbus_forwards_total",
    "Requests relayed to the worker that owns their key, by relay (answer, event_stream,"
    " websocket, call) and outcome (ok; failed: the owner did not answer, or the relay broke)",
    ["relay", "outcome"],
)
FORWARD_LATENCY = Histogram(
    "agentbus_forward_seconds",
    "Round trip of a relayed request and its answer (relays answer and call)",
    ["relay"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0),
)
KAFKA_PRODUCE_LATENCY = Histogram(
    "agentbus_kafka_produce_seconds",
    "Until Kafka acknowledged every record of a produce (idempotent) or committed a"
    " transaction (transaction, including the wait for the partition's previous one)",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
TRANSACTION_DECISIONS = Histogram(
    "agentbus_transaction_decisions",
    "Decisions (appends, approvals, idempotent publishes) committed together in one transaction"
    " of a state partition: above 1, group commit is saving round trips",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
KAFKA_PRODUCE_ERRORS = Counter(
    "agentbus_kafka_produce_errors_total", "Produces or transactions that failed, by kind", ["kind"]
)
TABLE_RECOVERY = SampledGauges(
    ["table"],
    (
        "agentbus_table_recovery_remaining_records",
        "Changelog records this worker still has to read before its copy of the table is recovered",
    ),
)
WORKER = SampledGauges(
    [],
    ("agentbus_worker_ready", "1 when the worker answers requests (tables recovered and caught up), else 0"),
    ("agentbus_table_recovery_in_progress", "1 while Faust recovers this worker's tables, else 0"),
)


@contextmanager
def producing(kind: str) -> Iterator[None]:
    """Time a produce of this kind; one that fails counts as an error (and is re-raised)."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        KAFKA_PRODUCE_ERRORS.labels(kind).inc()
        raise
    KAFKA_PRODUCE_LATENCY.labels(kind).observe(time.perf_counter() - started)


@asynccontextmanager
async def forwarding(relay: str) -> AsyncIterator[None]:
    """Count a relayed request and time its round trip; one that fails counts as failed.
    (A cancellation is the client leaving, not the owner failing: not counted.)
    Asynchronous so that it joins the relay's own `async with`."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        FORWARDS.labels(relay, "failed").inc()
        raise
    FORWARDS.labels(relay, "ok").inc()
    FORWARD_LATENCY.labels(relay).observe(time.perf_counter() - started)
