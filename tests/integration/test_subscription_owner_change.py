"""Delivery ids across owner changes: unique, valid with the new owner, superseded when
delivered again. Its own fleet: the tests kill, stop and restart workers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.subs import call, new_subscription, new_topic, ok

pytestmark = pytest.mark.integration
RECORDS = 40
# Each record in a batch of its own and a dispatcher's fetch limited to a few of them (twice
# the payload limit per partition): a new owner's window fills a few records per fetch, so
# the ids the tests quote are still beyond it when its first request comes.
PAYLOAD_LIMIT = 4096
PAD = "x" * 3000


def own_fleet_env(root: Path) -> dict[str, str]:
    return {"AGENTBUS_MAX_PAYLOAD_BYTES": str(PAYLOAD_LIMIT)}


async def publish_one_by_one(admin: aiohttp.ClientSession, url: str, topic: str) -> None:
    for n in range(RECORDS):
        await ok(admin, "POST", f"{url}/v1/publish", {"topic": f"it/acme/{topic}", "payload": [n, PAD]})


async def owner_of(admin: aiohttp.ClientSession, fleet: Fleet, sub: str) -> int:
    lag = await ok(admin, "GET", f"{fleet.urls[0]}{sub}/lag")
    return fleet.urls.index(lag["owner"])


async def pull_all(admin: aiohttp.ClientSession, url: str, sub: str, most: int) -> list[dict[str, Any]]:
    """Pull until most records came or a pull finds none; sorted by offset."""
    got: list[dict[str, Any]] = []
    while len(got) < most:
        data = await ok(admin, "POST", f"{url}{sub}/pull", {"max_records": most - len(got), "wait_ms": 3000})
        if not data["deliveries"]:
            break
        got += data["deliveries"]
    return sorted(got, key=lambda d: d["offset"])


async def ack_ids(admin: aiohttp.ClientSession, url: str, sub: str, ids: list[str]) -> tuple[int, Any]:
    return await call(admin, "POST", f"{url}{sub}/ack", {"delivery_ids": ids}, patience=120)


async def test_after_a_kill_the_new_owner_honours_old_ids_and_never_issues_them_again(
    own_fleet: Fleet, admin: aiohttp.ClientSession
) -> None:
    first = own_fleet.urls[0]
    topic = await new_topic(admin, first)
    sub = await new_subscription(admin, first, topic, ack_deadline_ms=60_000, redelivery_backoff_ms=100)
    await publish_one_by_one(admin, first, topic)
    victim = await owner_of(admin, own_fleet, sub)
    survivor = own_fleet.urls[1 - victim]

    before = await pull_all(admin, own_fleet.urls[victim], sub, RECORDS)
    own_fleet.kill(victim)  # at once: whatever the owner had not written yet is lost
    assert [d["offset"] for d in before] == list(range(RECORDS))
    old_ids = {d["offset"]: d["delivery_id"] for d in before}

    # The first request the new owner gets, before its window holds anything: the ids the
    # former owner issued are its own (no 404), and the ack counts.
    upper = [old_ids[o] for o in range(RECORDS // 2, RECORDS)]
    status, body = await ack_ids(admin, survivor, sub, upper)
    assert (status, body) == (200, {"acked": RECORDS // 2})

    again = await pull_all(admin, survivor, sub, RECORDS // 2)
    assert [d["offset"] for d in again] == list(range(RECORDS // 2)), "acked records came back"
    assert {d["delivery_count"] for d in again} == {2}, "the former owner's delivery was not counted"
    assert not {d["delivery_id"] for d in again} & set(old_ids.values()), "an id was issued twice"

    status, body = await ack_ids(admin, survivor, sub, [old_ids[0]])
    assert status == 409 and body["error"]["code"] == "delivery_superseded", body
    status, body = await ack_ids(admin, survivor, sub, [d["delivery_id"] for d in again])
    assert (status, body) == (200, {"acked": RECORDS // 2})
    await asyncio.to_thread(own_fleet.restart, victim)


async def test_acks_and_counts_a_new_owner_recovered_survive_the_next_owner_change(
    own_fleet: Fleet, admin: aiohttp.ClientSession
) -> None:
    first = own_fleet.urls[0]
    topic = await new_topic(admin, first)
    sub = await new_subscription(admin, first, topic, ack_deadline_ms=60_000, redelivery_backoff_ms=100)
    await publish_one_by_one(admin, first, topic)
    a = await owner_of(admin, own_fleet, sub)
    b = 1 - a

    delivered = await pull_all(admin, own_fleet.urls[a], sub, RECORDS)
    upper = [d["delivery_id"] for d in delivered[RECORDS // 2 :]]
    assert await ok(admin, "POST", f"{own_fleet.urls[a]}{sub}/ack", {"delivery_ids": upper}) == {"acked": 20}

    await asyncio.to_thread(own_fleet.terminate, a)  # b takes over, recovers from the log, and commits
    lag = await ok(admin, "GET", f"{own_fleet.urls[b]}{sub}/lag")
    assert (lag["owner"], lag["partitions"][0]["acked_ahead"]) == (own_fleet.urls[b], RECORDS // 2)
    await asyncio.to_thread(own_fleet.restart, a)
    await asyncio.to_thread(
        own_fleet.terminate, b
    )  # and a takes it back: what b only recovered must not be lost

    again = await pull_all(admin, own_fleet.urls[a], sub, RECORDS)
    # b leaving can take the group through two rebalances; a dispatcher a starts again in
    # between redelivers what it had leased (docs/subscriptions.md, Failover), each time
    # with the next count. What must hold: no acked record comes back, and each record's
    # first delivery here counts the two before it.
    assert sorted({d["offset"] for d in again}) == list(range(RECORDS // 2)), "acked records came back"
    first_counts: dict[int, int] = {}
    for d in again:
        count = d["delivery_count"]
        first_counts[d["offset"]] = min(count, first_counts.get(d["offset"], count))
    assert set(first_counts.values()) == {2}
    assert not {d["delivery_id"] for d in again} & {d["delivery_id"] for d in delivered}
    assert len({d["delivery_id"] for d in again}) == len(again), "an id was issued twice"
    await asyncio.to_thread(own_fleet.restart, b)
