"""kill -9 of the worker running a subscription, in the middle of a run, loses nothing.

Its own fleet: the test kills and restarts a worker, which the session's fleet must not see.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.subs import call, new_subscription, new_topic, ok, publish

pytestmark = pytest.mark.integration
TOTAL = 600


async def test_kill_9_of_the_owner_loses_no_record_and_no_ack(
    own_fleet: Fleet, admin: aiohttp.ClientSession
) -> None:
    first = own_fleet.urls[0]
    topic = await new_topic(admin, first, partitions=3)
    sub = await new_subscription(admin, first, topic, ack_deadline_ms=2000, redelivery_backoff_ms=100)
    await publish(admin, first, topic, list(range(TOTAL // 2)))
    owner = (await ok(admin, "GET", f"{first}{sub}/lag"))["owner"]
    victim = own_fleet.urls.index(owner)
    survivor = own_fleet.urls[1 - victim]

    acked: set[int] = set()
    delivered_after_kill: list[int] = []
    killed = False

    async def consume_until(done: int) -> None:
        """Pull through the survivor; ack all but every 7th record on its first delivery."""
        while len(acked) < done:
            status, body = await call(
                admin, "POST", f"{survivor}{sub}/pull", {"max_records": 20, "wait_ms": 500}, patience=120
            )
            assert status == 200, body
            batch: list[dict[str, Any]] = body["deliveries"]
            if killed:
                delivered_after_kill.extend(d["payload"] for d in batch)
            keep = [d for d in batch if d["delivery_count"] > 1 or d["payload"] % 7 != 0]
            if keep:
                status, body = await call(
                    admin, "POST", f"{survivor}{sub}/ack", {"delivery_ids": [d["delivery_id"] for d in keep]}
                )
                if status == 200:
                    acked.update(d["payload"] for d in keep)
                else:  # the owner died with these leases: they came back since, and are acked then
                    assert status == 409 and body["error"]["code"] == "delivery_superseded", body

    await consume_until(TOTAL // 4)
    acked_before_kill = set(acked)
    own_fleet.kill(victim)
    killed = True
    await publish(admin, survivor, topic, list(range(TOTAL // 2, TOTAL)))
    await consume_until(TOTAL)

    assert acked == set(range(TOTAL)), "every record was delivered (at least once) and acked"
    assert not acked_before_kill & set(delivered_after_kill), "an acked record was delivered again"
    lag = await ok(admin, "GET", f"{survivor}{sub}/lag")
    assert lag["owner"] == survivor
    assert (lag["total_lag"], lag["in_flight"]) == (0, 0)

    own_fleet.restart(victim)  # and the subscription keeps its state through the next rebalance
    await publish(admin, survivor, topic, ["after"])
    deadline = asyncio.get_running_loop().time() + 60
    got: list[Any] = []
    while not got and asyncio.get_running_loop().time() < deadline:
        _, body = await call(
            admin, "POST", f"{first}{sub}/pull", {"max_records": 50, "wait_ms": 1000}, patience=120
        )
        got = [d["payload"] for d in body["deliveries"]]
    assert got == ["after"], "only the new record: nothing acked came back after the restart"
