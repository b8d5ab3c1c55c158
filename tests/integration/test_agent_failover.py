"""Agents survive kill -9 of their owner and a full fleet restart with every RocksDB
directory wiped: registrations, operator state, liveness and inbox positions come back
from Kafka alone; usage spent just before a kill -9 is counted once.

Its own fleet: the test kills and restarts workers, which the session's fleet must not see.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.agent_calls import (
    ack_inbox,
    agent_key,
    agent_path,
    drain_inbox,
    pull_inbox,
    read_events,
    register,
    send,
    wait_for_liveness,
)
from tests.fleet import Fleet
from tests.helpers import unique
from tests.integration.test_tool_calls import place, setup
from tests.subs import call, ok

pytestmark = pytest.mark.integration


async def keep_beating(http: aiohttp.ClientSession, urls: list[str], agent: dict[str, Any]) -> None:
    """Beat every 300 ms through whichever worker answers (a dead one refuses connections)."""
    i = 0
    while True:
        i += 1
        try:
            async with http.post(f"{urls[i % len(urls)]}{agent_path(agent)}/heartbeat", json={}) as r:
                await r.read()
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.3)


async def snapshot(http: aiohttp.ClientSession, url: str, tenant: str) -> dict[str, dict[str, Any]]:
    status, listed = await call(http, "GET", f"{url}/v1/agents?tenant={tenant}", patience=120)
    assert status == 200, listed
    return {a["id"]: a for a in listed["agents"]}


async def test_agents_survive_kill_9_of_their_owner_and_a_wiped_full_restart(
    own_fleet: Fleet, admin: aiohttp.ClientSession
) -> None:
    tenant = unique("fo")
    urls = own_fleet.urls
    # One agent that keeps beating (an interval long enough to ride out the failover),
    # and silent ones that go dead before anything is killed.
    beater = await register(admin, urls[0], tenant=tenant, heartbeat_interval_ms=15_000)
    silent = [await register(admin, urls[i % 2], tenant=tenant, heartbeat_interval_ms=500) for i in range(6)]
    await ok(admin, "PUT", f"{urls[1]}{agent_path(silent[0])}/state", {"state": "draining"})
    beating = asyncio.create_task(keep_beating(admin, urls, beater))
    try:
        await wait_for_liveness(admin, urls[0], beater, "alive")
        for agent in silent:
            await wait_for_liveness(admin, urls[1], agent, "dead")
        for i in range(5):
            await send(admin, urls[i % 2], beater, {"n": i})
        got = await pull_inbox(admin, urls[1], beater, max_records=2, wait_ms=5000)
        assert [d["payload"] for d in got] == [{"n": 0}, {"n": 1}]
        await ack_inbox(admin, urls[0], beater, got)
        before = await snapshot(admin, urls[0], tenant)
        assert len(before) == 7

        async with admin.get(f"{urls[0]}{agent_path(beater)}") as r:
            victim = urls.index(r.headers["X-Agentbus-Worker"])
        survivor = urls[1 - victim]
        own_fleet.kill(victim)
        for agent in [beater, *silent]:  # answered by the survivor once it took the partitions over
            status, found = await call(admin, "GET", f"{survivor}{agent_path(agent)}", patience=120)
            assert status == 200, found
            assert found == {**before[agent["id"]], "last_heartbeat_at": found["last_heartbeat_at"]}
        await wait_for_liveness(admin, survivor, beater, "alive")
        got = await drain_inbox(admin, survivor, beater, 3)
        assert [d["payload"] for d in got] == [{"n": 2}, {"n": 3}, {"n": 4}], "acked ones never again"
        await send(admin, survivor, beater, {"n": 5})
    finally:
        beating.cancel()

    events_before = await read_events(admin, survivor, tenant)
    own_fleet.stop()
    own_fleet.start(fresh_data=True)  # RocksDB gone: the views must come back from the changelogs

    after = {}
    for url in own_fleet.urls:
        after = await snapshot(admin, url, tenant)
        assert set(after) == set(before)
        for agent_id, agent in before.items():
            assert {k: after[agent_id][k] for k in ("state", "created_at", "capabilities", "card")} == {
                k: agent[k] for k in ("state", "created_at", "capabilities", "card")
            }
    assert after[silent[0]["id"]]["state"] == "draining"
    assert all(after[a["id"]]["liveness"] == "dead" for a in silent)
    assert after[beater["id"]]["last_heartbeat_at"] is not None
    [unacked] = await drain_inbox(admin, own_fleet.urls[1], beater, 1)
    assert unacked["payload"] == {"n": 5}
    assert await pull_inbox(admin, own_fleet.urls[0], beater, wait_ms=500) == []
    await asyncio.sleep(2)  # a few liveness ticks: nothing recovered may be announced again
    events_after = await read_events(admin, own_fleet.urls[0], tenant)
    for agent in silent:  # (in order per agent; agents' events interleave across partitions)
        assert [e for e in events_after if e["agent"] == agent_key(agent)] == [
            e for e in events_before if e["agent"] == agent_key(agent)
        ]


async def test_usage_spent_just_before_its_owner_dies_is_counted_once(
    own_fleet: Fleet, admin: aiohttp.ClientSession
) -> None:
    """The survivor resumes the agents log at the last committed offset, before the usage
    record its standby view already holds: applied again, the usage would count twice."""
    urls = own_fleet.urls
    caller, callee, conv = await setup(admin, urls[0])
    placed = await place(admin, urls[0], conv, caller, callee, call_id=unique("call"))
    result = {"call_id": placed["call_id"], "status": "ok", "result": 3, "usage": {"input_tokens": 7}}
    await ok(admin, "POST", f"{urls[0]}{conv}/tool-results", result)
    async with admin.get(f"{urls[0]}{agent_path(callee)}") as r:
        victim = urls.index(r.headers["X-Agentbus-Worker"])
    while (await ok(admin, "GET", f"{urls[victim]}{agent_path(callee)}"))["usage"]["input_tokens"] != 7:
        await asyncio.sleep(0.05)
    own_fleet.kill(victim)  # within Faust's commit interval (2.8 s) of the usage record
    survivor = urls[1 - victim]
    status, found = await call(admin, "GET", f"{survivor}{agent_path(callee)}", patience=120)
    assert status == 200 and found["usage"]["input_tokens"] == 7, found
    await asyncio.sleep(3)  # the survivor's processor has gone over the log again by now
    again = await ok(admin, "GET", f"{survivor}{agent_path(callee)}")
    assert again["usage"]["input_tokens"] == 7, again["usage"]
