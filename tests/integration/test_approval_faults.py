"""Exactly once, under faults: 1,000 approvals decided through a two-worker fleet while a
random worker is killed with kill -9 several times. A read_committed consumer then finds
each approved call's envelope exactly once, no rejected one, and every decision kept.

Its own fleet: the test kills and restarts workers, which the session's fleet must not see.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.agent_calls import register
from tests.fleet import Fleet
from tests.helpers import unique
from tests.subs import call, ok

pytestmark = pytest.mark.integration
APPROVALS = 1000
CONVERSATIONS = 24
KILLS = 3
PAY = {"name": "pay", "input_schema": {"type": "object"}, "requires_approval": True}


async def in_lanes(count: int, items: list[Any], work: Any) -> None:
    queue = iter(items)

    async def lane() -> None:
        for item in queue:
            await work(item)

    await asyncio.gather(*(lane() for _ in range(count)))


async def test_each_approved_call_is_published_exactly_once_through_kill_9(
    own_fleet: Fleet, admin: aiohttp.ClientSession
) -> None:
    urls = own_fleet.urls
    caller = await register(admin, urls[0])
    callee = await register(admin, urls[1], capabilities=[PAY])
    conversations = []
    for i in range(CONVERSATIONS):
        conv_id = unique("f")
        body = {"namespace": "it", "tenant": "acme", "id": conv_id}
        await ok(admin, "POST", f"{urls[i % 2]}/v1/conversations", body, 201)
        conversations.append(f"/v1/conversations/it/acme/{conv_id}")

    parked: list[dict[str, Any]] = []

    async def park(i: int) -> None:
        body = {"tool": "pay", "arguments": {"n": i}, "caller": caller["id"], "callee": callee["id"]}
        body["call_id"] = f"c{i}-{unique('x')}"
        parked.append(
            await ok(admin, "POST", f"{urls[i % 2]}{conversations[i % CONVERSATIONS]}/tool-calls", body, 201)
        )

    await in_lanes(16, list(range(APPROVALS)), park)
    expected = {p["approval_id"]: ("approved" if i % 5 else "rejected") for i, p in enumerate(parked)}
    decided: Counter[str] = Counter()

    async def decide(p: dict[str, Any]) -> None:
        state = expected[p["approval_id"]]
        verb = "approve" if state == "approved" else "reject"
        url = random.choice(own_fleet.urls)
        path = f"{url}/v1/approvals/it/acme/{p['approval_id']}/{verb}"
        status, body = await call(admin, "POST", path, {"digest": p["approval_digest"]}, patience=240)
        if status == 409:  # a retry after the first attempt committed: the first decision shows
            assert body["error"]["code"] == "already_decided", body
            assert body["error"]["details"]["decision"]["state"] == state
        else:
            assert status == 200 and body["state"] == state, body
        decided[state] += 1

    async def killer() -> None:
        for k in range(KILLS):
            while sum(decided.values()) < APPROVALS * (k + 1) // (KILLS + 1):
                await asyncio.sleep(0.05)
            victim = random.randrange(len(own_fleet.workers))
            own_fleet.kill(victim)
            await asyncio.sleep(2)
            await asyncio.to_thread(own_fleet.restart, victim)

    order = list(parked)
    random.shuffle(order)
    await asyncio.gather(in_lanes(16, order, decide), killer())
    assert sum(decided.values()) == APPROVALS

    published = await published_approvals(own_fleet)
    approved = {a for a, s in expected.items() if s == "approved"}
    assert set(published) == approved, "every approved call was published, no rejected one"
    assert all(count == 1 for count in published.values()), f"published twice: {published.most_common(3)}"

    for url in own_fleet.urls:
        listed = await ok(admin, "GET", f"{url}/v1/approvals/it/acme")
        states = {a["approval_id"]: a["state"] for a in listed["approvals"]}
        assert {a: states.get(a) for a in expected} == expected, "every decision kept"


async def published_approvals(fleet: Fleet) -> Counter[str]:
    """Envelopes on the conversations log that approvals published, read committed."""
    consumer = AIOKafkaConsumer(bootstrap_servers=fleet.bootstrap, isolation_level="read_committed")
    await consumer.start()
    found: Counter[str] = Counter()
    try:
        topic = f"{fleet.prefix}-conversations"
        tps = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or range(12))]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    headers = dict(record.headers)
                    if "bus.approval_id" in headers:
                        found[headers["bus.approval_id"].decode()] += 1
    finally:
        await consumer.stop()
    return found
