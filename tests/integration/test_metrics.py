"""The operators' metrics on a live fleet: traffic moves them, with the right labels, and
every metric the dashboard and the alerts query is in a worker's /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.agent_calls import agent_path, pull_inbox, register
from tests.fleet import Fleet
from tests.helpers import unique
from tests.subs import ack, new_subscription, new_topic, ok, publish, pull
from tests.unit.test_monitoring import alert_expressions, dashboard_expressions, exposed_names, queried_names

pytestmark = pytest.mark.integration

PATIENCE_S = 30.0  # gauges follow the workers' state: wait for it, never for a time


class Scrape:
    """Every sample of every worker of the fleet at one moment."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for text in texts
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def values(self, name: str, **labels: str) -> list[float]:
        return [v for n, found, v in self.samples if n == name and labels.items() <= found.items()]

    def total(self, name: str, **labels: str) -> float:
        return sum(self.values(name, **labels))


async def scrape(fleet: Fleet, http: aiohttp.ClientSession) -> Scrape:
    texts = []
    for url in fleet.urls:
        async with http.get(f"{url}/metrics") as r:
            assert r.status == 200, await r.text()
            texts.append(await r.text())
    return Scrape(texts)


async def eventually(fleet: Fleet, http: aiohttp.ClientSession, holds: Callable[[Scrape], bool]) -> Scrape:
    """The first scrape for which holds() is true; fails with the last one after PATIENCE_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE_S
    while True:
        found = await scrape(fleet, http)
        if holds(found) or loop.time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_publish_pull_ack_and_dead_letters_move_the_topic_and_subscription_metrics(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    name = await new_topic(http, url0, partitions=2)
    topic = f"it/acme/{name}"
    sub = await new_subscription(http, url0, name, redelivery_backoff_ms=0)
    key = sub.removeprefix("/v1/subscriptions/")
    before = await scrape(fleet, http)
    await publish(http, url0, name, list(range(5)))

    after = await scrape(fleet, http)
    assert after.total("agentbus_topic_records_published_total", topic=topic) == 5
    produced = "agentbus_kafka_produce_seconds_count"
    assert after.total(produced, kind="idempotent") > before.total(produced, kind="idempotent")

    first = await pull(http, url1, sub, max_records=2, wait_ms=5000)
    assert len(first) == 2
    lagging = await eventually(
        fleet,
        http,
        lambda s: (
            s.values("agentbus_subscription_lag_records", subscription=key) == [5]
            and s.values("agentbus_subscription_in_flight", subscription=key) == [2]
        ),
    )
    assert lagging.values("agentbus_subscription_lag_records", subscription=key) == [5], "on its owner only"
    assert lagging.values("agentbus_subscription_in_flight", subscription=key) == [2]
    [age] = lagging.values("agentbus_subscription_oldest_unacked_age_seconds", subscription=key)
    assert age >= 0

    await ack(http, url0, sub, first)
    rest = await pull(http, url0, sub, max_records=10, wait_ms=5000)
    while len(first) + len(rest) < 5:
        rest += await pull(http, url0, sub, max_records=10, wait_ms=5000)
    poison, fine = rest[0], rest[1:]
    await ack(http, url1, sub, fine)
    nack = {"delivery_ids": [poison["delivery_id"]], "action": "dead_letter", "reason": "poison"}
    assert (await ok(http, "POST", f"{url1}{sub}/nack", nack))["dead_lettered"] == 1

    settled = await eventually(
        fleet,
        http,
        lambda s: (
            s.values("agentbus_subscription_lag_records", subscription=key) == [0]
            and s.values("agentbus_subscription_in_flight", subscription=key) == [0]
        ),
    )
    assert settled.values("agentbus_subscription_lag_records", subscription=key) == [0]
    assert settled.values("agentbus_subscription_in_flight", subscription=key) == [0]
    assert settled.values("agentbus_subscription_oldest_unacked_age_seconds", subscription=key) == []
    assert settled.total("agentbus_topic_records_delivered_total", topic=topic, via="pull") == 5
    nacked = settled.total("agentbus_dead_letters_total", cause="nacked")
    assert nacked == before.total("agentbus_dead_letters_total", cause="nacked") + 1
    # One of the two workers does not own the subscription and relayed its requests.
    forwards = "agentbus_forwards_total"
    assert settled.total(forwards, relay="answer", outcome="ok") > before.total(
        forwards, relay="answer", outcome="ok"
    )
    assert settled.total("agentbus_forward_seconds_count", relay="answer") > 0


async def test_agents_tool_calls_approvals_and_streams_move_their_metrics(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    before = await scrape(fleet, http)
    caller = await register(http, url0)
    tools = [
        {"name": "add", "input_schema": {"type": "object"}},
        {"name": "pay", "input_schema": {"type": "object"}, "requires_approval": True},
    ]
    callee = await register(http, url1, capabilities=tools)
    registered = await eventually(
        fleet, http, lambda s: s.total("agentbus_agents") == before.total("agentbus_agents") + 2
    )
    assert registered.total("agentbus_agents") == before.total("agentbus_agents") + 2
    assert {labels["liveness"] for n, labels, _ in registered.samples if n == "agentbus_agents"} == {
        "unknown",
        "alive",
        "late",
        "dead",
    }

    conv_id = unique("mc")
    conv = f"/v1/conversations/it/acme/{conv_id}"
    body = {"namespace": "it", "tenant": "acme", "id": conv_id, "participants": [caller["id"], callee["id"]]}
    await ok(http, "POST", f"{url0}/v1/conversations", body, 201)
    spec = {"tool": "add", "arguments": {}, "caller": caller["id"], "callee": callee["id"]}
    placed = await ok(http, "POST", f"{url0}{conv}/tool-calls", spec, 201)
    result = {"call_id": placed["call_id"], "status": "ok", "result": 3}
    await ok(http, "POST", f"{url1}{conv}/tool-results", result)
    answered = await scrape(fleet, http)
    calls = "agentbus_tool_call_seconds_count"
    assert answered.total(calls, status="ok") == before.total(calls, status="ok") + 1

    pending = before.total("agentbus_approvals_pending")
    parked = await ok(http, "POST", f"{url0}{conv}/tool-calls", {**spec, "tool": "pay"}, 201)
    waiting = await eventually(fleet, http, lambda s: s.total("agentbus_approvals_pending") == pending + 1)
    assert waiting.total("agentbus_approvals_pending") == pending + 1
    assert 0 < min(waiting.values("agentbus_approval_next_expiry_seconds")) <= 3600
    approval = f"/v1/approvals/it/acme/{parked['approval_id']}"
    await ok(http, "POST", f"{url1}{approval}/reject", {"digest": parked["approval_digest"]})
    decided = await scrape(fleet, http)
    decisions = "agentbus_approval_decision_seconds_count"
    assert decided.total(decisions, outcome="rejected") == before.total(decisions, outcome="rejected") + 1
    assert decided.total(calls, status="rejected") == before.total(calls, status="rejected") + 1
    assert decided.total("agentbus_approvals_pending") == pending

    chunk = {"stream_id": unique("s"), "chunk_seq": 0, "data": "hello"}
    await ok(http, "POST", f"{url1}{conv}/stream-chunks", chunk)
    streamed = await scrape(fleet, http)
    chunks = "agentbus_stream_chunk_latency_seconds_count"
    assert streamed.total(chunks) == before.total(chunks) + 1
    assert streamed.total("agentbus_kafka_produce_seconds_count", kind="transaction") > 0

    # The callee's inbox is a subscription too: its lag shows under its own key.
    inbox_key = f"it/acme/inbox.{callee['id']}"
    delivered = await pull_inbox(http, url0, callee, wait_ms=5000)
    assert [d["headers"]["bus.kind"] for d in delivered] == ["tool_call"], agent_path(callee)
    leased = (await scrape(fleet, http)).values("agentbus_subscription_in_flight", subscription=inbox_key)
    assert leased == [1.0]


async def test_every_worker_reports_ready_and_recovered(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    found = await scrape(fleet, http)
    assert found.values("agentbus_worker_ready") == [1.0, 1.0]
    assert found.values("agentbus_table_recovery_in_progress") == [0.0, 0.0]
    tables = {
        labels["table"] for n, labels, _ in found.samples if n == "agentbus_table_recovery_remaining_records"
    }
    assert {"keys", "topics", "agents-view"} <= tables
    assert found.total("agentbus_table_recovery_remaining_records") == 0


async def test_every_metric_the_dashboard_and_the_alerts_query_is_in_a_workers_metrics(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    exposed = exposed_names((await scrape(fleet, http)).texts[0])
    queried = queried_names(dashboard_expressions() + alert_expressions())
    assert queried and queried <= exposed, sorted(queried - exposed)
