"""Publish-edge rules against the real fleet: deny, tag and reroute end to end, bad rules, access.

Every test uses a tenant of its own: rules apply to a whole tenant, and must not leak
into the other tests' topics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import end_offsets, open_sse, unique

pytestmark = pytest.mark.integration


async def new_topic(http: aiohttp.ClientSession, url: str, tenant: str, name: str) -> dict[str, Any]:
    body = {"namespace": "it", "tenant": tenant, "name": name, "partitions": 2}
    async with http.post(f"{url}/v1/topics", json=body) as r:
        assert r.status == 201, await r.text()
        created: dict[str, Any] = await r.json()
    return created


async def put_rules(http: aiohttp.ClientSession, url: str, tenant: str, rules: list[Any]) -> tuple[int, Any]:
    async with http.put(f"{url}/v1/rules/it/{tenant}", json={"rules": rules}) as r:
        return r.status, await r.json()


async def get_rules(http: aiohttp.ClientSession, url: str, tenant: str) -> Any:
    async with http.get(f"{url}/v1/rules/it/{tenant}") as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def publish(http: aiohttp.ClientSession, url: str, body: Any, batch: bool = False) -> tuple[int, Any]:
    async with http.post(f"{url}/v1/publish{'/batch' if batch else ''}", json=body) as r:
        return r.status, await r.json()


async def written(fleet: Fleet, topic: dict[str, Any]) -> int:
    return sum((await end_offsets(fleet.bootstrap, topic["kafka_topic"])).values())


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def deny(id: str, reason: str, **match: Any) -> dict[str, Any]:
    return {"id": id, "match": match, "action": {"type": "deny", "reason": reason}}


async def test_rule_set_lifecycle_across_workers(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    tenant = unique("r")
    empty = await get_rules(http, fleet.urls[1], tenant)
    assert empty == {"namespace": "it", "tenant": tenant, "rules": [], "updated_at": None}

    rules = [
        deny("no-test", "no test data here", headers={"env": "test"}),
        {"id": "tag-all", "match": {}, "action": {"type": "tag", "headers": {"seen": "yes"}}},
    ]
    status, stored = await put_rules(http, fleet.urls[0], tenant, rules)
    assert status == 200, stored
    assert [r["id"] for r in stored["rules"]] == ["no-test", "tag-all"] and stored["updated_at"]
    assert stored["rules"][0]["match"] == {"topics": "*", "headers": {"env": "test"}, "payload": []}
    assert await get_rules(http, fleet.urls[1], tenant) == stored  # GET catches up with the log

    async with http.delete(f"{fleet.urls[1]}/v1/rules/it/{tenant}") as r:
        assert r.status == 200 and (await r.json())["rules"] == []
    assert (await get_rules(http, fleet.urls[0], tenant))["rules"] == []


async def test_deny_refuses_the_whole_request_and_writes_nothing(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    tenant = unique("r")
    topic = await new_topic(http, fleet.urls[0], tenant, "orders")
    ref = f"it/{tenant}/orders"
    rule = deny(
        "no-drafts", "drafts stay local", payload=[{"pointer": "/status", "op": "eq", "value": "draft"}]
    )
    assert (await put_rules(http, fleet.urls[0], tenant, [rule]))[0] == 200

    status, body = await publish(http, fleet.urls[0], {"topic": ref, "payload": {"status": "draft"}})
    assert status == 403, body
    assert body["error"]["code"] == "rule_denied"
    assert body["error"]["details"] == {"rule": "no-drafts", "reason": "drafts stay local"}

    records = [{"topic": ref, "payload": {"status": "paid"}}, {"topic": ref, "payload": {"status": "draft"}}]
    status, body = await publish(http, fleet.urls[0], {"records": records}, batch=True)
    assert status == 403 and body["error"]["details"]["index"] == 1
    assert await written(fleet, topic) == 0  # the good record of the batch was not produced either

    async def denied_on_the_other_worker() -> bool:
        status, _ = await publish(http, fleet.urls[1], {"topic": ref, "payload": {"status": "draft"}})
        return status == 403

    assert await eventually(denied_on_the_other_worker)
    assert await written(fleet, topic) == 0
    status, _ = await publish(http, fleet.urls[1], {"topic": ref, "payload": {"status": "paid"}})
    assert status == 200 and await written(fleet, topic) == 1


async def test_tag_adds_headers_that_win_and_first_match_wins(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    tenant = unique("r")
    await new_topic(http, fleet.urls[0], tenant, "events")
    ref = f"it/{tenant}/events"
    rules = [
        {
            "id": "classify",
            "match": {"topics": "ev*", "headers": {"source": "crm"}},
            "action": {"type": "tag", "headers": {"trace": "rule", "classified": "yes"}},
        },
        deny("only-crm", "only the CRM publishes here"),
    ]
    assert (await put_rules(http, fleet.urls[0], tenant, rules))[0] == 200
    stream = await open_sse(http, f"{fleet.urls[1]}/v1/subscribe/{ref}?from=earliest")
    try:
        envelope = {"topic": ref, "payload": {"n": 1}, "headers": {"source": "crm", "trace": "caller"}}
        status, receipt = await publish(http, fleet.urls[0], envelope)
        assert status == 200 and receipt["topic"] == ref
        status, body = await publish(http, fleet.urls[0], {"topic": ref, "payload": {"n": 2}})
        assert status == 403 and body["error"]["details"]["rule"] == "only-crm"  # the next rule matched

        event = await stream.next_event()
        headers = event.json["headers"]
        assert event.json["payload"] == {"n": 1}
        assert headers["classified"] == "yes" and headers["trace"] == "rule" and headers["source"] == "crm"
    finally:
        stream.close()


async def test_reroute_sends_the_record_to_the_target_under_its_schema(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    tenant = unique("r")
    source = await new_topic(http, fleet.urls[0], tenant, "inbox")
    target = await new_topic(http, fleet.urls[0], tenant, "quarantine")
    rule = {
        "id": "suspicious",
        "match": {"topics": "inbox", "payload": [{"pointer": "/score", "op": "gt", "value": 0.9}]},
        "action": {"type": "reroute", "topic": "quarantine"},
    }
    assert (await put_rules(http, fleet.urls[0], tenant, [rule]))[0] == 200

    status, receipt = await publish(
        http, fleet.urls[1], {"topic": f"it/{tenant}/inbox", "payload": {"score": 1}}
    )
    assert status == 200 and receipt["topic"] == f"it/{tenant}/quarantine"
    status, receipt = await publish(
        http, fleet.urls[1], {"topic": f"it/{tenant}/inbox", "payload": {"score": 0}}
    )
    assert status == 200 and receipt["topic"] == f"it/{tenant}/inbox"
    assert await written(fleet, source) == 1 and await written(fleet, target) == 1

    # The target's schema binding applies to a rerouted record.
    schema = {"type": "object", "required": ["id"]}
    async with http.post(
        f"{fleet.urls[0]}/v1/schemas/it/{tenant}/held/versions", json={"schema": schema}
    ) as r:
        assert r.status == 201, await r.text()
    async with http.put(
        f"{fleet.urls[0]}/v1/topics/it/{tenant}/quarantine/schema", json={"subject": "held"}
    ) as r:
        assert r.status == 200, await r.text()
    status, body = await publish(
        http, fleet.urls[0], {"topic": f"it/{tenant}/inbox", "payload": {"score": 1}}
    )
    assert status == 422 and body["error"]["code"] == "schema_violation"
    status, receipt = await publish(
        http, fleet.urls[0], {"topic": f"it/{tenant}/inbox", "payload": {"score": 1, "id": "x"}}
    )
    assert status == 200 and receipt["topic"] == f"it/{tenant}/quarantine"
    assert await written(fleet, source) == 1 and await written(fleet, target) == 2

    # A target deleted after the rule was stored: the publish names it.
    async with http.delete(f"{fleet.urls[0]}/v1/topics/it/{tenant}/quarantine") as r:
        assert r.status == 200
    status, body = await publish(
        http, fleet.urls[0], {"topic": f"it/{tenant}/inbox", "payload": {"score": 1}}
    )
    assert status == 404 and body["error"]["code"] == "topic_not_found"
    assert body["error"]["details"]["rerouted_from"] == f"it/{tenant}/inbox"


@pytest.mark.parametrize(
    ("rules", "index"),
    [
        ([deny("a", "x", payload=[{"pointer": "status", "op": "exists"}])], 0),  # malformed pointer
        ([deny("a", "x"), deny("b", "x", payload=[{"pointer": "/a~9", "op": "exists"}])], 1),
        ([deny("a", "x", payload=[{"pointer": "/a", "op": "like", "value": 1}])], 0),  # unknown op
        ([deny("a", "x"), {"id": "b", "action": {"type": "reroute", "topic": "nowhere"}}], 1),
        ([{"id": "a", "match": {"topics": "base"}, "action": {"type": "reroute", "topic": "base"}}], 0),
        ([{"id": "a", "action": {"type": "tag", "headers": {"bus.tenant": "evil"}}}], 0),
        ([{"id": "a", "action": {"type": "explode"}}], 0),
        ([deny("a", "x"), deny("a", "y")], 1),  # duplicate id
    ],
)
async def test_bad_rules_are_422_and_nothing_is_stored(
    fleet: Fleet, http: aiohttp.ClientSession, rules: list[Any], index: int
) -> None:
    tenant = unique("r")
    await new_topic(http, fleet.urls[0], tenant, "base")
    status, before = await put_rules(http, fleet.urls[0], tenant, [deny("keep", "kept")])
    assert status == 200
    status, body = await put_rules(http, fleet.urls[0], tenant, rules)
    assert status == 422, body
    assert body["error"]["code"] == "invalid_rule"
    assert body["error"]["details"]["index"] == index and body["error"]["details"]["reason"]
    assert await get_rules(http, fleet.urls[1], tenant) == before


async def test_only_a_tenant_wide_manage_key_changes_rules(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url = fleet.urls[0]
    tenant = unique("r")

    async def key(actions: list[str], topics: str = "*", of: str = tenant) -> str:
        spec = {
            "name": unique("k"),
            "role": "tenant",
            "namespace": "it",
            "tenant": of,
            "grants": [{"topics": topics, "actions": actions}],
        }
        async with http.post(f"{url}/v1/keys", json=spec) as r:
            assert r.status == 201, await r.text()
            secret: str = (await r.json())["secret"]
        return secret

    async def call(method: str, secret: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"}) as s:
            body = {"rules": [deny("a", "x")]} if method == "PUT" else None
            async with s.request(method, f"{url}/v1/rules/it/{tenant}", json=body) as r:
                return r.status, await r.json()

    reader = await key(["read", "write"])
    status, body = await call("PUT", reader)
    assert status == 403 and body["error"]["code"] == "permission_missing"
    assert (await call("DELETE", reader))[0] == 403
    assert (await call("GET", reader))[0] == 200

    narrow = await key(["manage"], topics="m-*")  # a reroute could move any topic's records
    status, body = await call("PUT", narrow)
    assert status == 403 and body["error"]["details"]["topics"] == "*"

    other = await key(["read", "write", "manage"], of="globex")
    status, body = await call("PUT", other)
    assert status == 403 and body["error"]["code"] == "tenant_forbidden"

    assert (await get_rules(http, url, tenant))["rules"] == []  # none of them stored anything
    status, body = await call("PUT", await key(["manage"]))
    assert status == 200 and [r["id"] for r in body["rules"]] == ["a"]
