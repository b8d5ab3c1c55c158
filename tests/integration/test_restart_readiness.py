"""A worker that restarts on its old data dir answers 503 not_ready until its key table
has caught up: never 401 for a valid key (one created while it was down included), never
200 for a key revoked while it was down. Its own fleet: the test kills a worker."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import unique

pytestmark = pytest.mark.integration


RETRIABLE = (503, 504)  # the key commands' processor may be on the worker just killed


async def make_key(http: aiohttp.ClientSession, url: str, tenant: str) -> dict[str, str]:
    spec = {
        "name": "k",
        "role": "tenant",
        "namespace": "it",
        "tenant": tenant,
        "grants": [{"actions": ["read"]}],
    }
    for _ in range(5):
        async with http.post(f"{url}/v1/keys", json=spec) as r:
            if r.status in RETRIABLE:
                continue  # until the group hands the commands' partition over
            assert r.status == 201, await r.text()
            key: dict[str, str] = await r.json()
            return key
    pytest.fail("creating a key never succeeded")


async def revoke(http: aiohttp.ClientSession, url: str, key_id: str) -> None:
    """DELETE, retried as a client would while a killed worker's partitions move: a retry
    after a timed-out attempt may find the key revoked already (404)."""
    for attempt in range(5):
        async with http.delete(f"{url}/v1/keys/{key_id}") as r:
            if r.status in RETRIABLE:
                continue
            assert r.status == 200 or (attempt > 0 and r.status == 404), await r.text()
            return
    pytest.fail("revoking the key never succeeded")


async def status_with(session: aiohttp.ClientSession, url: str, secret: str) -> int | None:
    try:
        async with session.get(f"{url}/v1/topics", headers={"Authorization": f"Bearer {secret}"}) as r:
            await r.read()
            return r.status
    except aiohttp.ClientError:
        return None  # not listening yet


async def poll(url: str, secret: str, stop: asyncio.Event) -> Counter[int]:
    """Every answer the worker gives this key, as fast as it answers, until stop."""
    seen: Counter[int] = Counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while not stop.is_set():
            status = await status_with(session, url, secret)
            if status is not None:
                seen[status] += 1
            await asyncio.sleep(0.01)
    return seen


async def test_a_restarting_worker_never_answers_from_a_stale_key_table(own_fleet: Fleet) -> None:
    admin = {"Authorization": f"Bearer {own_fleet.admin_key}"}
    a, b = own_fleet.urls
    tenant = unique("rr")
    async with aiohttp.ClientSession(headers=admin, timeout=aiohttp.ClientTimeout(total=30)) as http:
        revoked = await make_key(http, a, tenant)
        valid = await make_key(http, a, tenant)
        async with aiohttp.ClientSession() as anyone:
            for url in (a, b):  # both workers know both keys
                for key in (revoked, valid):
                    for _ in range(100):
                        if await status_with(anyone, url, key["secret"]) == 200:
                            break
                        await asyncio.sleep(0.1)
                    else:
                        pytest.fail(f"{url} never accepted a new key")
        own_fleet.kill(1)
        await revoke(http, a, revoked["id"])
        created_meanwhile = await make_key(http, a, tenant)

    own_fleet.launch(1)  # on its old data dir: it still holds the revoked key as valid
    stop = asyncio.Event()
    keys = (revoked, valid, created_meanwhile)
    pollers = [asyncio.create_task(poll(b, k["secret"], stop)) for k in keys]
    await asyncio.to_thread(own_fleet.wait_healthy, own_fleet.workers[1])
    await asyncio.sleep(3)  # and a while after it says it is ready
    stop.set()
    seen_revoked, seen_valid, seen_new = await asyncio.gather(*pollers)
    print("answers while restarting: revoked", seen_revoked, "valid", seen_valid, "new", seen_new)
    assert seen_revoked[200] == 0 and set(seen_revoked) <= {401, 503}, seen_revoked
    assert seen_valid[401] == 0 and set(seen_valid) <= {200, 503} and seen_valid[200] > 0, seen_valid
    assert seen_new[401] == 0 and set(seen_new) <= {200, 503} and seen_new[200] > 0, seen_new
    async with aiohttp.ClientSession() as anyone:
        assert await status_with(anyone, b, revoked["secret"]) == 401
        assert await status_with(anyone, b, valid["secret"]) == 200
        assert await status_with(anyone, b, created_meanwhile["secret"]) == 200
