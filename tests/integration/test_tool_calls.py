"""Tool calls on conversations: placed, delivered to the callee's inbox, answered once,
timed out by the bus, cancelled down the tree, and fenced after that."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.agent_calls import agent_path, pull_inbox, register
from tests.fleet import Fleet
from tests.helpers import unique
from tests.subs import call, ok

pytestmark = pytest.mark.integration

ADD = {
    "name": "add",
    "input_schema": {
        "type": "object",
        "properties": {"numbers": {"type": "array", "items": {"type": "number"}}},
        "required": ["numbers"],
    },
    "output_schema": {"type": "number"},
}


async def setup(http: aiohttp.ClientSession, url: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A caller, a callee with the add tool, and a conversation between them."""
    caller = await register(http, url)
    callee = await register(http, url, capabilities=[ADD])
    conv_id = unique("tc")
    body = {"namespace": "it", "tenant": "acme", "id": conv_id, "participants": [caller["id"], callee["id"]]}
    await ok(http, "POST", f"{url}/v1/conversations", body, 201)
    return caller, callee, f"/v1/conversations/it/acme/{conv_id}"


async def place(
    http: aiohttp.ClientSession,
    url: str,
    conv: str,
    caller: dict[str, Any],
    callee: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "tool": "add",
        "arguments": {"numbers": [1, 2]},
        "caller": caller["id"],
        "callee": callee["id"],
        **extra,
    }
    placed: dict[str, Any] = await ok(http, "POST", f"{url}{conv}/tool-calls", body, 201)
    return placed


async def inbox_of(
    http: aiohttp.ClientSession, url: str, agent: dict[str, Any], count: int
) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(got) < count and time.monotonic() < deadline:
        batch = await pull_inbox(http, url, agent, wait_ms=500)
        if batch:
            await ok(
                http,
                "POST",
                f"{url}{agent_path(agent)}/inbox/ack",
                {"delivery_ids": [d["delivery_id"] for d in batch]},
            )
        got += batch
    return got


async def test_a_call_reaches_the_callee_and_its_result_the_caller_once(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    caller, callee, conv = await setup(http, url0)
    placed = await place(http, url0, conv, caller, callee, call_id=unique("call"), correlation_id="corr-1")
    assert (placed["status"], placed["reply_to"]) == ("pending", caller["id"]) and placed["seq"] == 1

    [delivered] = await inbox_of(http, url1, callee, 1)
    headers = delivered["headers"]
    assert (headers["bus.kind"], headers["bus.call_id"], headers["bus.correlation_id"]) == (
        "tool_call",
        placed["call_id"],
        "corr-1",
    )
    assert delivered["payload"]["arguments"] == {"numbers": [1, 2]}

    path = f"/v1/tool-calls/it/acme/{placed['call_id']}"
    waiting = asyncio.create_task(ok(http, "GET", f"{url1}{path}?wait_ms=10000"))
    await asyncio.sleep(0.3)
    assert not waiting.done(), "the GET waits while the call is pending"
    result = {
        "call_id": placed["call_id"],
        "status": "ok",
        "result": 3,
        "usage": {"input_tokens": 5, "cost": 0.5},
    }
    began = time.monotonic()
    settled = await ok(http, "POST", f"{url1}{conv}/tool-results", result)
    assert settled["status"] == "done" and settled["result"]["result"] == 3
    done = await waiting
    assert done["status"] == "done" and time.monotonic() - began < 5

    status, body = await call(http, "POST", f"{url0}{conv}/tool-results", result)
    assert status == 409 and body["error"]["code"] == "tool_result_exists"
    assert body["error"]["details"]["result"]["result"] == 3

    [answer] = await inbox_of(http, url0, caller, 1)
    assert answer["headers"]["bus.kind"] == "tool_result" and answer["payload"]["result"] == 3
    thread = await ok(http, "GET", f"{url1}{conv}/messages")
    assert [(m["seq"], m["kind"]) for m in thread["messages"]] == [(1, "tool_call"), (2, "tool_result")]
    conversation = await ok(http, "GET", f"{url0}{conv}")
    assert conversation["usage"]["input_tokens"] == 5 and conversation["usage"]["cost"] == 0.5
    deadline = time.monotonic() + 10  # the callee spent it: its agent record adds it up
    while (await ok(http, "GET", f"{url1}{agent_path(callee)}"))["usage"]["input_tokens"] != 5:
        assert time.monotonic() < deadline, "the callee's usage did not add up"
        await asyncio.sleep(0.2)


async def test_calls_and_results_are_checked_before_anything_is_written(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[1]
    caller, callee, conv = await setup(http, url)
    stranger = await register(http, url)  # registered, but not a participant
    base: dict[str, Any] = {
        "tool": "add",
        "arguments": {"numbers": [1]},
        "caller": caller["id"],
        "callee": callee["id"],
    }
    changes: list[tuple[dict[str, Any], int, str]] = [
        ({"tool": "multiply"}, 404, "tool_not_found"),
        ({"arguments": {"numbers": ["one"]}}, 422, "schema_violation"),
        ({"arguments": {}}, 422, "schema_violation"),
        ({"callee": "nobody-here"}, 404, "agent_not_found"),
        ({"caller": stranger["id"]}, 403, "not_a_participant"),
        ({"parent_call_id": "no-such-call"}, 404, "tool_call_not_found"),
        ({"timeout_ms": 5}, 422, "invalid_request"),
    ]
    for change, status, code in changes:
        got, body = await call(http, "POST", f"{url}{conv}/tool-calls", {**base, **change})
        assert (got, body["error"]["code"]) == (status, code), change
    assert (await ok(http, "GET", f"{url}{conv}"))["message_count"] == 0, "nothing was written"

    placed = await place(http, url, conv, caller, callee)
    results: list[tuple[dict[str, Any], int, str]] = [
        ({"status": "ok", "result": "three"}, 422, "schema_violation"),
        ({"status": "error"}, 422, "invalid_request"),
        ({"status": "ok", "call_id": "unknown-call", "result": 1}, 404, "tool_call_not_found"),
    ]
    for result, status, code in results:
        body = {"call_id": placed["call_id"], **result}
        got, answer = await call(http, "POST", f"{url}{conv}/tool-results", body)
        assert (got, answer["error"]["code"]) == (status, code), result
    got, answer = await call(http, "POST", f"{url}{conv}/tool-calls", {**base, "call_id": placed["call_id"]})
    assert (got, answer["error"]["code"]) == (409, "tool_call_exists")
    got, answer = await call(http, "GET", f"{url}/v1/tool-calls/it/acme/{unique('none')}")
    assert (got, answer["error"]["code"]) == (404, "tool_call_not_found")

    await ok(http, "PUT", f"{url}{agent_path(callee)}/state", {"state": "disabled"})
    got, answer = await call(http, "POST", f"{url}{conv}/tool-calls", base)
    assert (got, answer["error"]["code"]) == (409, "agent_disabled")


async def test_the_bus_times_a_call_out_once_and_fences_late_results(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    caller, callee, conv = await setup(http, url0)
    placed = await place(http, url0, conv, caller, callee, timeout_ms=500)
    path = f"/v1/tool-calls/it/acme/{placed['call_id']}"
    settled = await ok(http, "GET", f"{url1}{path}?wait_ms=10000")
    assert settled["status"] == "timed_out" and settled["result"]["by"] == "bus"
    late = {"call_id": placed["call_id"], "status": "ok", "result": 3}
    got, body = await call(http, "POST", f"{url1}{conv}/tool-results", late)
    assert (got, body["error"]["code"]) == (409, "tool_call_timed_out")
    await asyncio.sleep(1.0)  # more timer ticks: still one timeout
    kinds = [m["kind"] for m in (await ok(http, "GET", f"{url0}{conv}/messages"))["messages"]]
    assert kinds == ["tool_call", "tool_result"]
    [_, timeout] = await inbox_of(http, url0, callee, 1) + await inbox_of(http, url0, caller, 1)
    assert timeout["headers"]["bus.kind"] == "tool_result" and timeout["payload"]["status"] == "timed_out"


async def test_cancelling_a_call_cancels_every_pending_call_below_it(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    caller, callee, conv = await setup(http, url0)
    root = await place(http, url0, conv, caller, callee)
    child = await place(http, url1, conv, caller, callee, parent_call_id=root["call_id"])
    grandchild = await place(http, url0, conv, caller, callee, parent_call_id=child["call_id"])
    other = await place(http, url1, conv, caller, callee, parent_call_id=root["call_id"])
    done = {"call_id": other["call_id"], "status": "ok", "result": 3}
    await ok(http, "POST", f"{url0}{conv}/tool-results", done)

    cancelled = await ok(
        http, "POST", f"{url1}/v1/tool-calls/it/acme/{root['call_id']}/cancel", {"reason": "user"}
    )
    assert cancelled["cancelled"] == [root["call_id"], child["call_id"], grandchild["call_id"]]
    for placed in (root, child, grandchild):
        found = await ok(http, "GET", f"{url0}/v1/tool-calls/it/acme/{placed['call_id']}")
        assert found["status"] == "cancelled" and found["result"]["error"]["message"] == "user"
    assert (await ok(http, "GET", f"{url0}/v1/tool-calls/it/acme/{other['call_id']}"))["status"] == "done"

    late = {"call_id": grandchild["call_id"], "status": "ok", "result": 3}
    got, body = await call(http, "POST", f"{url0}{conv}/tool-results", late)
    assert (got, body["error"]["code"]) == (409, "tool_call_cancelled")
    got, body = await call(http, "POST", f"{url0}/v1/tool-calls/it/acme/{root['call_id']}/cancel", {})
    assert (got, body["error"]["code"]) == (409, "tool_call_cancelled")
    cancels = [d for d in await inbox_of(http, url1, callee, 7) if d["headers"]["bus.kind"] == "tool_cancel"]
    assert sorted(d["headers"]["bus.call_id"] for d in cancels) == sorted(
        [root["call_id"], child["call_id"], grandchild["call_id"]]
    )


async def test_caller_and_reply_to_must_be_registered_agents_of_the_tenant(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    caller = await register(http, url0)
    callee = await register(http, url1, capabilities=[ADD])
    elsewhere = await register(http, url0, tenant=unique("other"))  # same id space, other tenant
    conv_id = unique("tc")  # no participants: only the registry can refuse a caller
    await ok(
        http, "POST", f"{url0}/v1/conversations", {"namespace": "it", "tenant": "acme", "id": conv_id}, 201
    )
    conv = f"/v1/conversations/it/acme/{conv_id}"
    base = {"tool": "add", "arguments": {"numbers": [1]}, "caller": caller["id"], "callee": callee["id"]}
    refused: list[tuple[dict[str, Any], str, str]] = [
        ({"caller": "nobody-calls"}, "nobody-calls", "caller"),
        ({"reply_to": "nobody-reads"}, "nobody-reads", "reply_to"),
        ({"caller": elsewhere["id"]}, elsewhere["id"], "caller"),
        ({"reply_to": elsewhere["id"]}, elsewhere["id"], "reply_to"),
        ({"caller": "nobody-calls", "callee": "nobody-runs"}, "nobody-runs", "callee"),
    ]
    for url in fleet.urls:
        for change, agent, role in refused:
            got, body = await call(http, "POST", f"{url}{conv}/tool-calls", {**base, **change})
            assert (got, body["error"]["code"]) == (404, "agent_not_found"), change
            assert body["error"]["details"] == {"agent": agent, "role": role}, change
    assert (await ok(http, "GET", f"{url1}{conv}"))["message_count"] == 0, "nothing was written"
    assert await inbox_of(http, url0, callee, 1) == [], "nothing reached the callee"

    reader = await register(http, url1)
    placed = await place(http, url0, conv, caller, callee, reply_to=reader["id"])
    assert placed["reply_to"] == reader["id"]


async def test_only_the_callee_posts_a_result(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    caller, callee, conv = await setup(http, url0)
    placed = await place(http, url0, conv, caller, callee)
    result = {"call_id": placed["call_id"], "status": "ok", "result": 3}
    for url in fleet.urls:
        got, body = await call(http, "POST", f"{url}{conv}/tool-results", {**result, "sender": caller["id"]})
        assert (got, body["error"]["code"]) == (403, "not_callee")
        assert body["error"]["details"] == {
            "call_id": placed["call_id"],
            "sender": caller["id"],
            "callee": callee["id"],
        }
    assert (await ok(http, "GET", f"{url1}{conv}"))["message_count"] == 1, "nothing was written"
    found = await ok(http, "GET", f"{url1}/v1/tool-calls/it/acme/{placed['call_id']}")
    assert found["status"] == "pending"
    assert await inbox_of(http, url1, caller, 1) == [], "the caller got no result"

    settled = await ok(http, "POST", f"{url1}{conv}/tool-results", {**result, "sender": callee["id"]})
    assert settled["status"] == "done" and settled["result"]["by"] == "agent"
    got, body = await call(http, "POST", f"{url0}{conv}/tool-results", {**result, "sender": caller["id"]})
    assert (got, body["error"]["code"]) == (403, "not_callee"), "a stranger learns nothing of the result"
    thread = await ok(http, "GET", f"{url0}{conv}/messages")
    assert [(m["kind"], m["sender"]) for m in thread["messages"]] == [
        ("tool_call", caller["id"]),
        ("tool_result", callee["id"]),
    ]


async def test_a_key_that_may_only_write_places_a_call_to_an_agent_owned_elsewhere(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    """The bus looks the callee up on its owner with its own key, not the caller's (which
    may hold no read grant): the lookup used to come back 403 and the call 503 forever."""
    caller, callee, conv = await setup(http, fleet.urls[0])
    async with http.get(f"{fleet.urls[0]}{conv}") as r:
        conv_owner = r.headers["X-Agentbus-Worker"].rstrip("/")
    for _ in range(30):  # a callee owned by the other worker (each is a coin toss)
        async with http.get(f"{fleet.urls[0]}{agent_path(callee)}") as r:
            if r.headers["X-Agentbus-Worker"].rstrip("/") != conv_owner:
                break
        callee = await register(http, fleet.urls[0], capabilities=[ADD])
    else:
        raise AssertionError("no agent landed on the other worker")
    spec = {
        "role": "tenant",
        "namespace": "it",
        "tenant": "acme",
        "grants": [{"topics": "*", "actions": ["write"]}],
    }
    key = await ok(http, "POST", f"{fleet.urls[0]}/v1/keys", {"name": unique("k"), **spec}, 201)
    body = {"tool": "add", "arguments": {"numbers": [2, 3]}, "caller": caller["id"], "callee": callee["id"]}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key['secret']}"}) as writer:
        async with writer.post(f"{conv_owner}{conv}/tool-calls", json=body) as r:
            assert r.status == 201, await r.text()
            placed = await r.json()
    [delivered] = await inbox_of(http, fleet.urls[1], callee, 1)
    assert delivered["headers"]["bus.call_id"] == placed["call_id"]
