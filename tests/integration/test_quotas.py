"""Quotas hold across the whole fleet, answer 429 with Retry-After, and change without restart."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import open_sse, unique

pytestmark = pytest.mark.integration
LIMIT = 20
PER_KEY_STREAMS = 12  # AGENTBUS_MAX_SSE_CLIENTS_PER_KEY of the session fleet (conftest)


async def setup_key(http: aiohttp.ClientSession, fleet: Fleet, quota: dict[str, int]) -> tuple[str, str, str]:
    tenant = unique("q")
    async with http.post(
        f"{fleet.urls[0]}/v1/topics", json={"namespace": "it", "tenant": tenant, "name": "t"}
    ) as r:
        assert r.status == 201
    spec = {
        "name": "metered",
        "role": "tenant",
        "namespace": "it",
        "tenant": tenant,
        "grants": [{"topics": "*", "actions": ["read", "write"]}],
        "quota": quota,
    }
    async with http.post(f"{fleet.urls[0]}/v1/keys", json=spec) as r:
        key = await r.json()
    return tenant, key["id"], key["secret"]


async def hammer(url: str, secret: str, tenant: str, seconds: float) -> list[tuple[float, int, Any]]:
    """Publish as fast as one client can for `seconds`; (time, status, Retry-After) per request."""
    results = []
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"}) as s:
        while time.monotonic() < deadline:
            async with s.post(f"{url}/v1/publish", json={"topic": f"it/{tenant}/t", "payload": 1}) as r:
                results.append((time.time(), r.status, r.headers.get("Retry-After")))
                if r.status == 429:
                    assert (await r.json())["error"]["code"] == "quota_exceeded"
    return results


async def test_a_key_quota_holds_across_two_workers(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    tenant, key_id, secret = await setup_key(http, fleet, {"publish_records_per_s": LIMIT})
    await asyncio.sleep(0.3)  # the key has replicated to the other worker
    runs = await asyncio.gather(*(hammer(url, secret, tenant, 3.2) for url in fleet.urls))
    both = [r for run in runs for r in run]
    accepted = Counter(int(t) for t, status, _ in both if status == 200)
    refused = [retry for _, status, retry in both if status == 429]
    assert refused and all(retry is not None and int(retry) >= 1 for retry in refused)
    full_windows = sorted(accepted)[1:-1]  # the first and last second are partial
    assert full_windows, accepted
    # Per-worker limits would let through about 2 x LIMIT a second; the fleet keeps to LIMIT.
    assert all(accepted[w] <= LIMIT * 1.3 for w in full_windows), accepted
    assert all(accepted[w] >= LIMIT * 0.5 for w in full_windows), accepted
    assert all(r[1] in (200, 429) for r in both), Counter(status for _, status, _ in both)

    # Raising the quota takes effect without a restart.
    async with http.put(
        f"{fleet.urls[1]}/v1/keys/{key_id}/quota", json={"publish_records_per_s": 10_000}
    ) as r:
        assert r.status == 200 and (await r.json())["quota"]["publish_records_per_s"] == 10_000
    await asyncio.sleep(0.3)
    after = await hammer(fleet.urls[0], secret, tenant, 0.5)
    assert {status for _, status, _ in after} == {200}


async def test_a_tenant_delivery_quota_paces_sse(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    tenant, _, secret = await setup_key(http, fleet, {})
    async with http.put(f"{fleet.urls[0]}/v1/quotas/it/{tenant}", json={"deliver_records_per_s": 5}) as r:
        assert r.status == 200
    records = [{"topic": f"it/{tenant}/t", "payload": n} for n in range(12)]
    async with http.post(f"{fleet.urls[0]}/v1/publish/batch", json={"records": records}) as r:
        assert r.status == 200
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"}) as s:
        async with s.get(f"{fleet.urls[0]}/v1/quotas/it/{tenant}") as r:
            assert (await r.json())["quota"]["deliver_records_per_s"] == 5
        started = time.monotonic()
        sse = await open_sse(s, f"{fleet.urls[0]}/v1/subscribe/it/{tenant}/t?from=earliest")
        try:
            got = [e.json["payload"] for e in await sse.events(12, timeout=10)]
        finally:
            sse.close()
    assert sorted(got) == list(range(12))  # paced, never dropped
    assert time.monotonic() - started >= 1.0  # 12 records at 5/s cannot all arrive in one window


async def test_one_key_holds_at_most_its_share_of_event_streams(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    """AGENTBUS_MAX_SSE_CLIENTS_PER_KEY (12 in the test fleet): the next stream of that key
    on the same worker gets 429 too_many_streams with Retry-After, other keys are not
    affected, and closing a stream frees its slot."""
    tenant, _, secret = await setup_key(http, fleet, {})
    url = f"{fleet.urls[0]}/v1/subscribe/it/{tenant}/t?from=latest"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"}) as s:
        streams = [await open_sse(s, url) for _ in range(PER_KEY_STREAMS)]
        try:
            async with s.get(url) as r:
                assert r.status == 429 and r.headers["Retry-After"] == "5"
                error = (await r.json())["error"]
                assert error["code"] == "too_many_streams" and error["details"]["limit"] == PER_KEY_STREAMS
            other = await open_sse(http, url)  # the admin key has streams of its own
            other.close()
            streams.pop().close()
            await asyncio.sleep(0.5)  # the worker notices the hang-up
            streams.append(await open_sse(s, url))
        finally:
            for stream in streams:
                stream.close()
