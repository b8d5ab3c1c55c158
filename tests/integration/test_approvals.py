"""Human approval of tool calls: parked, decided once on the exact digest, published once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.agent_calls import register
from tests.fleet import Fleet
from tests.helpers import end_offsets, unique
from tests.integration.test_tool_calls import inbox_of
from tests.subs import call, ok

pytestmark = pytest.mark.integration

PAY = {
    "name": "pay",
    "input_schema": {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]},
    "requires_approval": True,
}


async def setup(http: aiohttp.ClientSession, url: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    caller = await register(http, url)
    callee = await register(http, url, capabilities=[PAY])
    conv_id = unique("ap")
    await ok(
        http, "POST", f"{url}/v1/conversations", {"namespace": "it", "tenant": "acme", "id": conv_id}, 201
    )
    return caller, callee, f"/v1/conversations/it/acme/{conv_id}"


async def park(
    http: aiohttp.ClientSession,
    url: str,
    conv: str,
    caller: dict[str, Any],
    callee: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "tool": "pay",
        "arguments": {"amount": 10},
        "caller": caller["id"],
        "callee": callee["id"],
        **extra,
    }
    parked: dict[str, Any] = await ok(http, "POST", f"{url}{conv}/tool-calls", body, 201)
    assert (
        parked["status"] == "awaiting_approval"
        and parked["approval_id"]
        and len(parked["approval_digest"]) == 64
    )
    return parked


async def test_approve_publishes_the_parked_call_once(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    caller, callee, conv = await setup(http, url0)
    parked = await park(http, url0, conv, caller, callee)
    path = f"/v1/approvals/it/acme/{parked['approval_id']}"
    assert (await ok(http, "GET", f"{url0}{conv}"))["message_count"] == 0, "parked: not in the conversation"
    assert await inbox_of(http, url1, callee, 1) == [], "parked: not in the callee's inbox"

    shown = await ok(http, "GET", f"{url1}{path}")
    assert shown["state"] == "pending" and shown["envelope"]["arguments"] == {"amount": 10}
    listed = await ok(http, "GET", f"{url0}/v1/approvals/it/acme?state=pending&tool=pay&agent={callee['id']}")
    assert parked["approval_id"] in [a["approval_id"] for a in listed["approvals"]]

    status, body = await call(http, "POST", f"{url0}{path}/approve", {"digest": "0" * 64})
    assert (status, body["error"]["code"]) == (409, "digest_mismatch")
    decided = await ok(
        http, "POST", f"{url1}{path}/approve", {"digest": shown["digest"], "reason": "looks right"}
    )
    assert (decided["state"], decided["decided_by"], decided["reason"]) == (
        "approved",
        "bootstrap",
        "looks right",
    )
    assert decided["published_seq"] == 1
    status, body = await call(http, "POST", f"{url0}{path}/reject", {"digest": shown["digest"]})
    assert (status, body["error"]["code"]) == (409, "already_decided")
    assert body["error"]["details"]["decision"]["state"] == "approved"

    [delivered] = await inbox_of(http, url0, callee, 1)
    assert delivered["headers"]["bus.kind"] == "tool_call" and delivered["payload"]["arguments"] == {
        "amount": 10
    }
    thread = await ok(http, "GET", f"{url0}{conv}/messages")
    assert [(m["seq"], m["kind"]) for m in thread["messages"]] == [(1, "tool_call")]
    the_call = await ok(http, "GET", f"{url1}/v1/tool-calls/it/acme/{parked['call_id']}")
    assert the_call["status"] == "pending" and the_call["approval_id"] == parked["approval_id"]


async def test_reject_and_expiry_publish_nothing_and_tell_the_caller(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    caller, callee, conv = await setup(http, url1)
    rejected = await park(http, url1, conv, caller, callee)
    expiring = await park(http, url0, conv, caller, callee, approval_ttl_ms=1000)
    digest = rejected["approval_digest"]
    decided = await ok(
        http, "POST", f"{url0}/v1/approvals/it/acme/{rejected['approval_id']}/reject", {"digest": digest}
    )
    assert decided["state"] == "rejected"

    deadline = time.monotonic() + 15
    while (await ok(http, "GET", f"{url1}/v1/approvals/it/acme/{expiring['approval_id']}"))[
        "state"
    ] == "pending":
        assert time.monotonic() < deadline, "the approval did not expire"
        await asyncio.sleep(0.2)
    expired = await ok(http, "GET", f"{url1}/v1/approvals/it/acme/{expiring['approval_id']}")
    assert (expired["state"], expired["decided_by"]) == ("expired", "bus")

    results = await inbox_of(http, url0, caller, 2)
    assert sorted(r["payload"]["error"]["code"] for r in results) == ["expired", "rejected"]
    assert all(r["payload"]["status"] == "rejected" for r in results)
    assert (await ok(http, "GET", f"{url0}{conv}"))["message_count"] == 0
    assert await inbox_of(http, url0, callee, 1) == []


async def test_parallel_calls_get_their_own_approvals(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    caller, callee, conv = await setup(http, url0)
    parked = await asyncio.gather(*(park(http, fleet.urls[i % 2], conv, caller, callee) for i in range(6)))
    assert len({p["approval_id"] for p in parked}) == 6
    for i, p in enumerate(parked):
        verb = "approve" if i % 2 == 0 else "reject"
        path = f"{fleet.urls[i % 2]}/v1/approvals/it/acme/{p['approval_id']}/{verb}"
        await ok(http, "POST", path, {"digest": p["approval_digest"]})
    thread = await ok(http, "GET", f"{url1}{conv}/messages")
    published = sorted(m["payload"]["call_id"] for m in thread["messages"])
    assert published == sorted(p["call_id"] for i, p in enumerate(parked) if i % 2 == 0)
    assert [m["seq"] for m in thread["messages"]] == [1, 2, 3]


async def test_a_require_approval_rule_parks_publishes_until_decided(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0 = fleet.urls[0]
    tenant = unique("apr")  # a tenant of its own: a rule set replaces the tenant's rules
    topic = await ok(
        http, "POST", f"{url0}/v1/topics", {"namespace": "it", "tenant": tenant, "name": "payments"}, 201
    )
    rules = {
        "rules": [
            {
                "id": "gate",
                "match": {"topics": "pay*"},
                "action": {"type": "require_approval", "reason": "money"},
            }
        ]
    }
    await ok(http, "PUT", f"{url0}/v1/rules/it/{tenant}", rules)
    records = [{"topic": f"it/{tenant}/payments", "key": f"k{i}", "payload": {"amount": i}} for i in range(3)]
    # Published through the worker that took the rules: the other has them milliseconds later.
    receipts = (await ok(http, "POST", f"{url0}/v1/publish/batch", {"records": records}))["results"]
    assert [r["status"] for r in receipts] == ["awaiting_approval"] * 3
    assert all(r["partition"] is None and r["approval_id"] for r in receipts)
    assert sum((await end_offsets(fleet.bootstrap, topic["kafka_topic"])).values()) == 0, (
        "parked: nothing produced"
    )

    shown = await ok(http, "GET", f"{url0}/v1/approvals/it/{tenant}/{receipts[0]['approval_id']}")
    assert (shown["kind"], shown["envelope"]["payload"], shown["envelope"]["reason"]) == (
        "publish",
        {"amount": 0},
        "money",
    )
    for receipt, verb in zip(receipts, ["approve", "approve", "reject"], strict=True):
        path = f"/v1/approvals/it/{tenant}/{receipt['approval_id']}/{verb}"
        await ok(http, "POST", f"{fleet.urls[len(verb) % 2]}{path}", {"digest": receipt["approval_digest"]})
    status, body = await call(
        http,
        "POST",
        f"{url0}/v1/approvals/it/{tenant}/{receipts[0]['approval_id']}/approve",
        {"digest": receipts[0]["approval_digest"]},
    )
    assert (status, body["error"]["code"]) == (409, "already_decided")
    published = await read_topic(fleet.bootstrap, topic["kafka_topic"])
    assert sorted(published) == sorted((r["approval_id"], r["message_id"]) for r in receipts[:2])


async def read_topic(bootstrap: str, kafka_topic: str) -> list[tuple[str, str]]:
    """(approval id, message id) of every committed record of the topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [
            TopicPartition(kafka_topic, p)
            for p in sorted(consumer.partitions_for_topic(kafka_topic) or {0, 1, 2})
        ]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        found = []
        for tp in tps:
            consumer.seek(tp, 0)
            while await consumer.position(tp) < ends[tp]:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    headers = {k: v.decode() for k, v in record.headers}
                    found.append((headers["bus.approval_id"], headers["bus.message_id"]))
        return found
    finally:
        await consumer.stop()


async def test_a_parked_call_answers_get_until_and_after_its_decision(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    caller, callee, conv = await setup(http, url0)
    rejected = await park(http, url0, conv, caller, callee)
    expiring = await park(http, url1, conv, caller, callee, approval_ttl_ms=4000)
    approved = await park(http, url1, conv, caller, callee)

    for i, parked in enumerate((rejected, expiring, approved)):
        shown = await ok(http, "GET", f"{fleet.urls[i % 2]}/v1/tool-calls/it/acme/{parked['call_id']}")
        assert (shown["status"], shown["approval_id"], shown["result"]) == (
            "awaiting_approval",
            parked["approval_id"],
            None,
        )
    status, body = await call(http, "POST", f"{url0}/v1/tool-calls/it/acme/{rejected['call_id']}/cancel", {})
    assert (status, body["error"]["code"]) == (404, "tool_call_not_found"), "reject it instead"

    def wait(url: str, parked: dict[str, Any]) -> asyncio.Task[Any]:
        path = f"{url}/v1/tool-calls/it/acme/{parked['call_id']}?wait_ms=20000"
        return asyncio.create_task(ok(http, "GET", path))

    waits = [wait(url0, rejected), wait(url1, rejected), wait(url0, expiring), wait(url1, approved)]
    await asyncio.sleep(0.3)
    assert not any(w.done() for w in waits), "the GETs wait while the approvals are pending"

    began = time.monotonic()
    path = f"{url1}/v1/approvals/it/acme/{rejected['approval_id']}/reject"
    await ok(http, "POST", path, {"digest": rejected["approval_digest"], "reason": "over budget"})
    for done in await asyncio.gather(*waits[:2]):
        assert done["status"] == "rejected" and done["approval_id"] == rejected["approval_id"]
        assert (done["result"]["status"], done["result"]["by"], done["result"]["error"]) == (
            "rejected",
            "bus",
            {"code": "rejected", "message": "over budget"},
        )
    assert time.monotonic() - began < 5, "the decision ended the wait"

    expired = await waits[2]
    assert expired["status"] == "rejected"
    assert expired["result"]["error"] == {"code": "expired", "message": "expired"}
    assert time.monotonic() - began < 10, "the expiry ended the wait"
    again = await ok(http, "GET", f"{url0}/v1/tool-calls/it/acme/{expiring['call_id']}")
    assert again["status"] == "rejected" and again["result"]["error"]["code"] == "expired"

    assert not waits[3].done()
    path = f"{url0}/v1/approvals/it/acme/{approved['approval_id']}/approve"
    await ok(http, "POST", path, {"digest": approved["approval_digest"]})
    await asyncio.sleep(0.5)
    assert not waits[3].done(), "approved: the GET waits on for the result"
    result = {"call_id": approved["call_id"], "sender": callee["id"], "status": "ok", "result": None}
    await ok(http, "POST", f"{url1}{conv}/tool-results", result)
    done = await waits[3]
    assert done["status"] == "done" and done["seq"] == 1 and done["approval_id"] == approved["approval_id"]
    assert (await ok(http, "GET", f"{url0}{conv}"))["message_count"] == 2, "call and result only"
