"""The audit trail: admin actions and denials land on the audit topic and can be searched."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from bus.audit.service import DENIAL_WINDOW_S
from tests.fleet import Fleet
from tests.helpers import unique

pytestmark = pytest.mark.integration


async def search(session: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with session.get(f"{url}/v1/audit", params=params) as r:
        return r.status, await r.json()


async def test_admin_actions_and_denials_are_recorded_and_searchable(
    fleet: Fleet, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    since = str(int(time.time() * 1000) - 1000)
    tenant = unique("aud")
    async with http.post(f"{url}/v1/topics", json={"namespace": "it", "tenant": tenant, "name": "t"}) as r:
        assert r.status == 201
    async with http.post(
        f"{url}/v1/keys",
        json={
            "name": "auditor",
            "role": "tenant",
            "namespace": "it",
            "tenant": tenant,
            "grants": [{"topics": "*", "actions": ["manage"]}],
        },
    ) as r:
        key = await r.json()
    async with anonymous.delete(f"{url}/v1/topics/it/{tenant}/t") as r:
        assert r.status == 401
    async with http.post(f"{url}/v1/publish", json={"topic": f"it/{tenant}/t", "payload": 1}) as r:
        assert r.status == 200  # the data plane is not audited

    status, page = await search(http, fleet.urls[1], namespace="it", tenant=tenant, since=since)
    assert status == 200
    actions = [(e["action"], e["outcome"], e["status"]) for e in page["records"]]
    assert actions == [("topics.create_topic", "ok", 201), ("topics.delete_topic", "denied", 401)]
    denied = page["records"][1]
    assert denied["code"] == "unauthenticated" and denied["key_id"] is None

    status, page = await search(http, url, action="keys.create_key", since=since)
    assert any(e["key_id"] == "bootstrap" for e in page["records"])
    assert key["secret"] not in str(page)

    # A tenant key with manage sees its own tenant only, whatever it asks for.
    headers = {"Authorization": f"Bearer {key['secret']}"}
    async with aiohttp.ClientSession(headers=headers) as own:
        status, page = await search(own, url, since=since)
        assert status == 200 and {e["tenant"] for e in page["records"]} == {tenant}
        status, page = await search(own, url, tenant="someone-else")
        assert status == 403 and page["error"]["code"] == "tenant_forbidden"


async def test_audit_search_limits_and_bad_parameters(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    for _ in range(3):
        async with http.put(
            f"{fleet.urls[0]}/v1/schemas/it/acme/{unique('a')}/config", json={"compatibility": "NONE"}
        ) as r:
            assert r.status == 200
    await asyncio.sleep(0.1)
    status, page = await search(http, fleet.urls[0], action="schemas.put_config", limit="2")
    assert status == 200 and len(page["records"]) == 2 and page["truncated"] is True, page
    future = str(int(time.time() * 1000) + 3_600_000)
    status, page = await search(http, fleet.urls[0], since=future)
    assert status == 200 and page["records"] == []
    for bad in ({"limit": "0"}, {"limit": "x"}, {"since": "yesterday"}, {"until": "soon"}):
        status, body = await search(http, fleet.urls[0], **bad)
        assert status == 400 and body["error"]["code"] == "invalid_parameter", bad


async def test_newest_first_shows_the_denial_just_made(
    fleet: Fleet, http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    """README's tour: after a denial, order=newest&limit=... has it at the top, whatever the
    trail held before."""
    tenant = unique("newest")
    for name in ("a", "b", "c"):
        async with http.post(
            f"{fleet.urls[0]}/v1/topics", json={"namespace": "it", "tenant": tenant, "name": name}
        ) as r:
            assert r.status == 201
    async with anonymous.delete(f"{fleet.urls[0]}/v1/topics/it/{tenant}/a") as r:
        assert r.status == 401
    status, page = await search(http, fleet.urls[1], namespace="it", tenant=tenant, order="newest", limit="2")
    assert status == 200 and page["truncated"] is True
    assert [(e["action"], e["outcome"]) for e in page["records"]] == [
        ("topics.delete_topic", "denied"),
        ("topics.create_topic", "ok"),
    ]
    assert page["records"][1]["path"].endswith("/v1/topics")
    oldest = (await search(http, fleet.urls[1], namespace="it", tenant=tenant, limit="1"))[1]
    assert [e["action"] for e in oldest["records"]] == ["topics.create_topic"]
    status, body = await search(http, fleet.urls[0], order="sideways")
    assert status == 400 and body["error"]["code"] == "invalid_parameter"


async def test_a_flood_of_denials_costs_one_record_per_kind_and_window(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    """100 requests with a bad key: the first denial of the window is recorded at once, the
    repeats as one record with their count when the window closes, not 100 Kafka writes.
    The windows tick on their own clock, so the flood may straddle two of them: at most two
    records per window touched, counts adding up to 100."""
    tenant = unique("flood")
    began = time.monotonic()
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer abk_nope.nope"}) as bad:
        for _ in range(100):
            async with bad.get(f"{fleet.urls[0]}/v1/topics/it/{tenant}/t") as r:
                assert r.status == 401
    windows_touched = int((time.monotonic() - began) // DENIAL_WINDOW_S) + 2
    status, page = await search(http, fleet.urls[1], namespace="it", tenant=tenant)
    assert status == 200 and page["records"][0]["count"] == 1, page
    assert page["records"][0]["source"] == "127.0.0.1" and page["records"][0]["code"] == "invalid_key"
    for _ in range(60):  # the last window (10 s) closes
        counts = [e["count"] for e in page["records"]]
        if sum(counts) >= 100:
            break
        await asyncio.sleep(0.5)
        status, page = await search(http, fleet.urls[1], namespace="it", tenant=tenant)
    counts = [e["count"] for e in page["records"]]
    assert sum(counts) == 100 and counts[0] == 1, page
    assert len(counts) <= 2 * windows_touched, page
    assert {(e["code"], e["source"]) for e in page["records"]} == {("invalid_key", "127.0.0.1")}
