"""Conversation state and sequence numbers survive kill -9 of the owner and a full fleet
restart with every RocksDB directory wiped (the view comes back from Kafka alone).

Its own fleet: the test kills and restarts workers, which the session's fleet must not see.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import unique
from tests.subs import call, ok

pytestmark = pytest.mark.integration
WRITERS = 2
PER_WRITER = 40


async def append(http: aiohttp.ClientSession, url: str, conv: str, sender: str, message_id: str) -> int:
    """Append, retrying through a dying owner; the message_id keeps a retry from doubling it."""
    body = {"sender": sender, "payload": message_id, "message_id": message_id}
    status, answer = await call(http, "POST", f"{url}{conv}/messages", body, patience=120)
    assert status in (200, 201), answer
    seq: int = answer["seq"]
    return seq


async def test_sequence_numbers_survive_kill_9_and_a_wiped_full_restart(
    own_fleet: Fleet, admin: aiohttp.ClientSession
) -> None:
    url0 = own_fleet.urls[0]
    conv_id = unique("cf")
    conv = f"/v1/conversations/it/acme/{conv_id}"
    await ok(
        admin, "POST", f"{url0}/v1/conversations", {"namespace": "it", "tenant": "acme", "id": conv_id}, 201
    )
    async with admin.get(f"{url0}{conv}") as r:
        owner = r.headers["X-Agentbus-Worker"]
    victim = own_fleet.urls.index(owner)
    survivor = own_fleet.urls[1 - victim]
    for i in range(10):
        await append(admin, survivor, conv, "setup", f"setup-{i}")

    written = 0

    async def writer(n: int) -> list[int]:
        nonlocal written
        seqs = []
        for i in range(PER_WRITER):
            seqs.append(await append(admin, survivor, conv, f"w{n}", f"w{n}-{i}"))
            written += 1
        return seqs

    async def killer() -> None:
        while written < PER_WRITER // 2:
            await asyncio.sleep(0.01)
        own_fleet.kill(victim)

    results = await asyncio.gather(*(writer(n) for n in range(WRITERS)), killer())
    seqs = [s for r in results[:WRITERS] if isinstance(r, list) for s in r]
    total = 10 + WRITERS * PER_WRITER
    assert sorted(seqs) == list(range(11, total + 1)), "gap-free, and no retried append counted twice"
    await check_thread(admin, survivor, conv, total)

    own_fleet.stop()
    own_fleet.start(fresh_data=True)  # every worker's RocksDB gone: the view must come from Kafka
    await check_thread(admin, own_fleet.urls[victim], conv, total)
    assert await append(admin, own_fleet.urls[0], conv, "after", "after-restart") == total + 1


async def check_thread(http: aiohttp.ClientSession, url: str, conv: str, total: int) -> None:
    found = await ok(http, "GET", f"{url}{conv}")
    assert (found["message_count"], found["state"]) == (total, "active")
    page: dict[str, Any] = await ok(http, "GET", f"{url}{conv}/messages?limit=1000")
    assert [m["seq"] for m in page["messages"]] == list(range(1, total + 1))
    ids = [m["message_id"] for m in page["messages"]]
    assert len(set(ids)) == total, "each message once"
