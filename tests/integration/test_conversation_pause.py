"""An owner paused past its session (SIGSTOP: a VM freeze, a long GC) and then resumed
cannot write a sequence number its successor has used: its writes are fenced by the
partition's transactional id. Writers keep appending (with message ids, retrying) through
both workers the whole time; afterwards the log holds every sequence number once.
Its own fleet: the test pauses a worker."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import unique
from tests.integration.test_conversation_failover import append, check_thread
from tests.subs import ok

pytestmark = pytest.mark.integration
WRITERS = 4
PER_WRITER = 30
PAUSE_S = 22  # past the session timeout (10 s) and the takeover that follows


async def test_a_paused_owner_that_resumes_writes_no_sequence_number_twice(
    own_fleet: Fleet, admin: aiohttp.ClientSession
) -> None:
    url0 = own_fleet.urls[0]
    conv_id = unique("pause")
    conv = f"/v1/conversations/it/acme/{conv_id}"
    body = {"namespace": "it", "tenant": "acme", "id": conv_id}
    await ok(admin, "POST", f"{url0}/v1/conversations", body, 201)
    async with admin.get(f"{url0}{conv}") as r:
        victim = own_fleet.urls.index(r.headers["X-Agentbus-Worker"])
    survivor = own_fleet.urls[1 - victim]
    for i in range(5):
        await append(admin, survivor, conv, "setup", f"setup-{i}")
    written = 0

    async def writer(n: int) -> list[int]:
        """Writers 1 and 3 go to the owner itself: what they send during the pause waits in its
        socket and is served when it resumes, before it hears that it lost the partition."""
        nonlocal written
        seqs = []
        url = own_fleet.urls[victim] if n % 2 else survivor
        for i in range(PER_WRITER):
            seqs.append(await append(admin, url, conv, f"w{n}", f"w{n}-{i}"))
            written += 1
        return seqs

    async def pauser() -> None:
        while written < 10:
            await asyncio.sleep(0.005)
        own_fleet.pause(victim)  # with appends in flight on it
        await asyncio.sleep(PAUSE_S)
        own_fleet.resume(victim)  # they go on now, with the sequence numbers it had

    results = await asyncio.gather(*(writer(n) for n in range(WRITERS)), pauser())
    seqs = [s for r in results[:WRITERS] if isinstance(r, list) for s in r]
    total = 5 + WRITERS * PER_WRITER
    assert sorted(seqs) == list(range(6, total + 1)), "each append once, gap-free"
    await check_thread(admin, survivor, conv, total)  # the log itself: every seq once, every id once
