"""Assembles a worker, in one place: the Faust app and its tables, the processors and
their timers, the HTTP routes behind the middleware, and the background services.

Reading order: the context every handler gets; the route modules (importing one
declares its routes); the processors (importing one declares its Faust agents); the
timers; the service that starts the Kafka gateway and the loops.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from collections.abc import Awaitable, Callable

import mode

from bus import logs, metrics, tracing
from bus.agents import http as agents
from bus.agents import inbox_http as inbox
from bus.approvals import http as approvals
from bus.audit import http as audit
from bus.audit.service import ensure_audit_topic, record_request, summarize_denials
from bus.cluster import ownership
from bus.cluster.forwarding import FORWARDER
from bus.console.web import install as install_console  # the console at /ui
from bus.conversations import http as conversations
from bus.errors import BusError
from bus.http.server import install
from bus.kafka.context import BusContext
from bus.kafka.faust_app import app
from bus.kafka.gateway import KafkaGateway, declare_topics
from bus.kafka.transactions import TRANSACTIONS
from bus.keys import http as keys
from bus.keys.auth import authenticate
from bus.keys.quotas import LEDGER, ensure_usage_topic, follow_usage, report_usage
from bus.publish import dedup
from bus.publish import http as publish
from bus.rules import http as rules
from bus.schemas import http as schemas
from bus.settings import get_settings
from bus.state.command_log import catch_up
from bus.streams import http as streams
from bus.streams import socket_http as stream_socket
from bus.subscribe import http as subscribe
from bus.subscriptions import delivery_http as deliveries
from bus.subscriptions import http as subscriptions
from bus.subscriptions.ack_log import ensure_log_topic
from bus.subscriptions.dispatcher_pool import DISPATCHERS, inbox_kafka_topic
from bus.system import http as system
from bus.system.builtin_schemas import publish_bus_schemas
from bus.system.memory import return_free_memory
from bus.tools import http as tools
from bus.topics import http as topics
from tables import keys as tables_keys
from tables import rules as tables_rules
from tables import schemas as tables_schemas
from tables import subscriptions as tables_subscriptions
from tables import topics as tables_topics
from workers import agents as agent_records
from workers import conversations as conversation_records
from workers import keys as key_commands
from workers import publish_ids as publish_id_records
from workers import rules as rule_commands
from workers import schemas as schema_commands
from workers import subscriptions as subscription_commands
from workers import topics as topic_commands

__all__ = ["app", "ctx"]

# Importing a module registers its routes or agents; naming them here keeps the
# imports from looking unused (a linter once removed them and every route vanished).
HTTP_MODULES = (
    topics,
    publish,
    subscribe,
    subscriptions,
    deliveries,
    conversations,
    tools,
    stream_socket,
    streams,
    approvals,
    agents,
    inbox,
    schemas,
    keys,
    audit,
    rules,
    system,
)
COMMANDED_TABLES = (
    (tables_keys.key_commands, tables_keys.keys),
    (tables_topics.topic_commands, tables_topics.topics),
    (tables_schemas.schema_commands, tables_schemas.schemas),
    (tables_rules.rule_commands, tables_rules.rules),
    (tables_subscriptions.subscription_commands, tables_subscriptions.subscriptions),
)
PROCESSOR_MODULES = (
    topic_commands,
    schema_commands,
    key_commands,
    rule_commands,
    subscription_commands,
    ownership,
    conversation_records,
    agent_records,
    publish_id_records,
)

log = logging.getLogger(__name__)
DRAIN_S = 10.0  # how long a stopping worker lets the requests in flight finish
gateway = KafkaGateway(get_settings())
ctx = BusContext(
    settings=get_settings(),
    gateway=gateway,
    recovered=lambda: bool(app.tables.recovery.completed.is_set()),
)
install(app, ctx, functools.partial(authenticate, ctx.settings), record_request)


def recovery_gauges() -> list[metrics.Row]:
    """Changelog records each table still has to read (active and standby partitions), while
    Faust recovers them; 0 once it is done (its highwaters are not kept current after)."""
    recovery = app.tables.recovery
    remaining = {table.name: 0 for table in app.tables.values()}
    if getattr(recovery, "in_recovery", False):
        for counts in (recovery.active_remaining(), recovery.standby_remaining()):
            for tp, left in counts.items():
                table = recovery.tp_to_table.get(tp)
                if table is not None:
                    remaining[table.name] = remaining.get(table.name, 0) + max(0, left)
    return [((name,), (float(left),)) for name, left in sorted(remaining.items())]


def worker_gauges() -> list[metrics.Row]:
    in_recovery = bool(getattr(app.tables.recovery, "in_recovery", False))
    return [((), (float(ctx.ready()), float(in_recovery)))]


metrics.TABLE_RECOVERY.read_from(recovery_gauges)
metrics.WORKER.read_from(worker_gauges)
install_console(app)


@app.timer(interval=agent_records.LIVENESS_TICK_S)  # type: ignore[untyped-decorator]
async def evaluate_liveness() -> None:
    await agent_records.evaluate_liveness(ctx)


@app.timer(interval=0.5)  # type: ignore[untyped-decorator]
async def time_out_calls() -> None:
    await conversation_records.time_out_calls(ctx)


@app.timer(interval=30.0)  # type: ignore[untyped-decorator]
async def expire_publish_ids() -> None:
    if ctx.ready():
        await dedup.sweep(ctx)


async def keep_running(what: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop for the worker's life; restart it (after a pause) if it fails."""
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting in 1 s", what)
            await asyncio.sleep(1)


async def drain_requests() -> None:
    """On SIGTERM, first: answer new requests 503 (readiness goes false, so a load balancer
    moves on; clients retry elsewhere), end event streams (clients resume elsewhere), let
    the requests in flight finish (at most DRAIN_S), then stop the subscriptions'
    dispatchers so every ack waiting on them is answered, before Faust hands the
    partitions over."""
    ctx.draining = True
    deadline = time.monotonic() + DRAIN_S
    while ctx.in_flight > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if ctx.in_flight:
        log.warning("stopping with %d requests still in flight after %.0f s", ctx.in_flight, DRAIN_S)
    await DISPATCHERS.stop_partitions(None)


app.before_stop = [drain_requests]


async def catch_up_global_tables() -> None:
    """Mark the worker caught up once every global table holds every command its log had
    when the worker started (a worker that was down while a key was revoked must not
    accept it, nor refuse a key created meanwhile). Until then requests get 503 not_ready."""
    started = time.monotonic()
    for commands, table in COMMANDED_TABLES:
        while True:
            try:
                await catch_up(ctx, commands, table)
                break
            except BusError as exc:  # the log's end is unknown yet, or the table is slow
                log.info("catching up %s: %s; still trying", table.table.name, exc.message)
                await asyncio.sleep(0.5)
    ctx.caught_up = True
    log.info("global tables caught up with their command logs in %.1f s", time.monotonic() - started)


async def freeze_startup_objects() -> None:
    """Once the worker is ready, move everything it built so far out of the garbage
    collector's sight. Faust, aiokafka and the tables leave a large heap that every full
    collection walked: 0.25-0.5 s with the event loop standing still, dozens of times a
    minute under load (agentbus_gc_pause_seconds), which was the tail of every latency."""
    while not ctx.ready():
        await asyncio.sleep(0.5)
    gc.collect()
    gc.freeze()
    log.info("froze %d startup objects out of the garbage collector's way", gc.get_freeze_count())


@app.service
class GatewayService(mode.Service):  # type: ignore[misc]
    """Starts the shared producer and admin client once the worker has recovered."""

    async def on_start(self) -> None:
        if ctx.settings.admin_key is None:
            # Without it nobody could create the first key: stop rather than serve nothing.
            raise SystemExit(
                "Set AGENTBUS_ADMIN_KEY or AGENTBUS_ADMIN_KEY_FILE (the fleet's first admin key)"
            )
        tracing.setup(ctx.settings, ownership.self_url())
        await gateway.start()
        await ensure_audit_topic(ctx)
        await ensure_usage_topic(ctx)
        await ensure_log_topic(ctx.settings)
        await declare_topics(
            ctx.settings, [(inbox_kafka_topic(ctx.settings), ctx.settings.state_partitions, {})]
        )
        self.add_future(publish_bus_schemas(ctx))
        self.add_future(keep_running("quota usage reports", lambda: report_usage(ctx, LEDGER)))
        self.add_future(keep_running("quota usage reader", lambda: follow_usage(ctx, LEDGER)))
        self.add_future(keep_running("subscription reconciler", DISPATCHERS.reconcile))
        self.add_future(keep_running("audit denial summaries", lambda: summarize_denials(ctx)))
        self.add_future(catch_up_global_tables())
        self.add_future(freeze_startup_objects())
        self.add_future(keep_running("returning freed memory", return_free_memory))
        logs.configure(ctx.settings.log_format, ownership.self_url())

    async def on_stop(self) -> None:
        await DISPATCHERS.stop_partitions(None)
        await TRANSACTIONS.forget(None)
        await FORWARDER.close()
        await gateway.stop()
        tracing.shutdown()
