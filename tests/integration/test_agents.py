"""Agents on the real broker and the two-worker fleet: registration, ownership, liveness
with its events, inboxes, operator state, and every refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from bus.wire import NAME_RE
from tests.agent_calls import (
    ack_inbox,
    agent_key,
    agent_path,
    beat,
    drain_inbox,
    expect_events,
    pull_inbox,
    read_events,
    register,
    send,
    tenant_key,
    wait_for_liveness,
)
from tests.fleet import Fleet
from tests.helpers import open_sse, unique
from tests.subs import call, ok

pytestmark = pytest.mark.integration
WORKER = "X-Agentbus-Worker"
ADD = {
    "name": "add",
    "description": "Adds numbers",
    "input_schema": {
        "type": "object",
        "properties": {"numbers": {"type": "array", "items": {"type": "number"}}},
    },
    "output_schema": {"type": "number"},
}


async def owner_of(http: aiohttp.ClientSession, url: str, agent: dict[str, Any]) -> str:
    async with http.get(f"{url}{agent_path(agent)}") as r:
        assert r.status == 200, await r.text()
        return r.headers[WORKER]


async def test_any_worker_answers_for_agents_owned_by_either(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    owned: dict[str, dict[str, Any]] = {}
    for i in range(40):  # until each worker owns one (12 partitions over 2 workers)
        agent = await register(
            http, fleet.urls[i % 2], capabilities=[ADD], labels={"team": "owners"}, description="d"
        )
        owned.setdefault(await owner_of(http, url0, agent), agent)
        if len(owned) == 2:
            break
    assert set(owned) == {url0, url1}, "both workers own agents"
    for owner, agent in owned.items():
        for url in fleet.urls:  # the owner, and the worker that forwards to it
            async with http.get(f"{url}{agent_path(agent)}") as r:
                found = await r.json()
                assert r.status == 200 and r.headers[WORKER] == owner
            assert found["capabilities"][0]["name"] == "add" and found["labels"] == {"team": "owners"}
            assert found["card"]["skills"][0]["id"] == "add" and found["card"]["version"] == "0.0.0"
            assert found["state"] == "enabled"
            assert found["liveness"] in (("unknown",) if url == fleet.urls[0] else ("unknown", "alive"))
            receipt = await beat(http, url, agent)
            assert receipt["agent"] == agent_key(agent) and receipt["state"] == "enabled"
            await send(http, url, agent, {"via": url})
        got = await drain_inbox(http, url1 if owner == url0 else url0, agent, 2)
        assert [d["payload"]["via"] for d in got] == fleet.urls
        status, body = await call(
            http, "POST", f"{url0}/v1/agents", {k: agent[k] for k in ("namespace", "tenant", "id")}
        )
        assert status == 409 and body["error"]["code"] == "agent_exists"
    for url in fleet.urls:
        listed = await ok(http, "GET", f"{url}/v1/agents?namespace=it&tenant=acme&label=team=owners")
        ids = [a["id"] for a in listed["agents"]]
        assert {a["id"] for a in owned.values()} <= set(ids) and ids == sorted(ids)


async def test_list_filters_and_shows_a_tenant_key_only_its_own(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    tag = unique("f")
    adder = await register(http, url0, capabilities=[ADD], labels={"tag": tag})
    idle = await register(http, url1, labels={"tag": tag}, state="draining")
    hidden = await register(http, url0, tenant="globex", labels={"tag": tag})
    await beat(http, url1, adder)
    await wait_for_liveness(http, url0, adder, "alive")

    async def ids(url: str, query: str, session: aiohttp.ClientSession = http) -> set[str]:
        listed = await ok(session, "GET", f"{url}/v1/agents?label=tag={tag}{query}")
        return {a["id"] for a in listed["agents"]}

    assert await ids(url1, "") == {adder["id"], idle["id"], hidden["id"]}
    assert await ids(url0, "&capability=add") == {adder["id"]}
    assert await ids(url1, "&state=draining") == {idle["id"]}
    assert await ids(url0, "&liveness=alive") == {adder["id"]}
    assert await ids(url1, "&tenant=globex") == {hidden["id"]}
    secret = await tenant_key(http, fleet.urls, ["read"])
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"}) as tenant_http:
        assert await ids(url1, "", tenant_http) == {adder["id"], idle["id"]}
        status, body = await call(tenant_http, "GET", f"{url0}{agent_path(hidden)}")
        assert status == 403 and body["error"]["code"] == "tenant_forbidden"
    for query, name in (("liveness=fine", "liveness"), ("state=on", "state"), ("label=x", "label")):
        status, body = await call(http, "GET", f"{url0}/v1/agents?{query}")
        assert status == 400 and body["error"]["code"] == "invalid_parameter", (query, body)
        assert name in body["error"]["details"]


async def test_liveness_goes_alive_late_dead_alive_with_an_event_for_each_move(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    tenant = unique("lv")
    agent = await register(http, url0, tenant=tenant, heartbeat_interval_ms=1000)
    stream = await open_sse(http, f"{url1}/v1/subscribe/it/{tenant}/agent-events?from=earliest")
    try:
        [registered] = await expect_events(stream, agent, 1)
        assert registered["type"] == "agent.registered" and registered["to"] == "enabled"
        await beat(http, url1, agent)
        [event] = await expect_events(stream, agent, 1)
        assert (event["type"], event["from"], event["to"]) == ("agent.liveness", "unknown", "alive")
        await wait_for_liveness(http, url1, agent, "alive")
        for _ in range(8):  # beating within the interval: no event
            await beat(http, fleet.urls[_ % 2], agent)
            await asyncio.sleep(0.3)
        late, dead = await expect_events(stream, agent, 2, timeout=15)
        assert [(e["from"], e["to"]) for e in (late, dead)] == [("alive", "late"), ("late", "dead")]
        assert 2000 <= late["at"] - late["last_heartbeat_at"] < 3500
        assert 5000 <= dead["at"] - dead["last_heartbeat_at"] < 6500
        found = await wait_for_liveness(http, url0, agent, "dead")
        assert found["last_heartbeat_at"] is not None and found["liveness_since"] is not None
        receipt = await beat(http, url0, agent)
        assert receipt["liveness"] == "dead"  # as announced before this beat
        [back] = await expect_events(stream, agent, 1)
        assert (back["from"], back["to"]) == ("dead", "alive")
        await wait_for_liveness(http, url1, agent, "alive")
    finally:
        stream.close()


async def test_an_agent_that_never_beats_is_unknown_then_dead(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    tenant = unique("lv")
    agent = await register(http, fleet.urls[1], tenant=tenant, heartbeat_interval_ms=500)
    assert agent["liveness"] == "unknown"
    await wait_for_liveness(http, fleet.urls[0], agent, "dead", timeout=15)
    events = [
        e for e in await read_events(http, fleet.urls[0], tenant, idle=1.5) if e["type"] == "agent.liveness"
    ]
    assert [(e["from"], e["to"]) for e in events] == [("unknown", "dead")]


async def test_inboxes_are_isolated_between_agents_and_tenants(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    first = await register(http, url0)
    second = await register(http, url1)
    other = await register(http, url0, tenant="globex", id=first["id"])  # same id, another tenant
    for i in range(6):
        await send(
            http, fleet.urls[i % 2], first, {"n": i}, headers={"trace": f"t{i}"}, **{"from": second["id"]}
        )
    for i in range(3):
        await send(http, url1, second, {"m": i}, correlation_id=f"c{i}")
    await send(http, url0, other, "for globex", content_type="text/plain")

    got = await drain_inbox(http, url1, first, 6)
    assert [d["payload"] for d in got] == [{"n": i} for i in range(6)], "only its own, in order"
    assert {d["key"] for d in got} == {agent_key(first)}
    assert all(d["topic"] == "it/acme/inbox" for d in got)
    headers = got[0]["headers"]
    assert headers["bus.to"] == agent_key(first) and headers["bus.from"] == agent_key(second)
    assert headers["trace"] == "t0" and headers["bus.kind"] == "message"
    got = await drain_inbox(http, url0, second, 3)
    assert [(d["payload"], d["headers"]["bus.correlation_id"]) for d in got] == [
        ({"m": i}, f"c{i}") for i in range(3)
    ]
    [text] = await drain_inbox(http, url1, other, 1)
    assert text["payload"] == "for globex" and text["content_type"] == "text/plain"
    for agent in (first, second, other):  # nothing else arrived, nothing comes back once acked
        assert await pull_inbox(http, url0, agent, wait_ms=300) == []

    # It resumes where it acked: a new message only, on either worker.
    await send(http, url0, first, {"n": 6})
    [later] = await pull_inbox(http, url1, first)
    assert later["payload"] == {"n": 6} and later["delivery_count"] == 1
    status, body = await call(
        http, "POST", f"{url0}{agent_path(second)}/inbox/ack", {"delivery_ids": [later["delivery_id"]]}
    )
    assert status == 404 and body["error"]["code"] == "delivery_not_found", "another inbox's delivery"
    status, body = await call(
        http, "POST", f"{url0}{agent_path(first)}/inbox/nack", {"delivery_ids": [later["delivery_id"]]}
    )
    assert status == 200 and body["nacked"] == 1
    [again] = await pull_inbox(http, url0, first, wait_ms=5000)
    assert again["offset"] == later["offset"] and again["delivery_count"] == 2
    await ack_inbox(http, url1, first, [again])

    # Inboxes are not subscriptions anyone may see, seek or delete.
    listed = await ok(http, "GET", f"{url0}/v1/subscriptions?namespace=it&tenant=acme")
    assert not [s for s in listed["subscriptions"] if s["id"].startswith("inbox.")]
    status, body = await call(http, "GET", f"{url1}/v1/subscriptions/it/acme/inbox.{first['id']}")
    assert status == 404 and body["error"]["code"] == "subscription_not_found"


async def test_a_tenant_key_reaches_no_other_tenants_agent(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    own = await register(http, url0)
    foreign = await register(http, url1, tenant="globex")
    secret = await tenant_key(http, fleet.urls, ["read", "write"])
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"}) as tenant_http:
        for method, suffix, body in (
            ("GET", "", None),
            ("POST", "/messages", {"payload": 1}),
            ("POST", "/heartbeat", {}),
            ("POST", "/inbox/pull", {"wait_ms": 0}),
        ):
            status, answer = await call(tenant_http, method, f"{url1}{agent_path(foreign)}{suffix}", body)
            assert status == 403 and answer["error"]["code"] == "tenant_forbidden", (suffix, answer)
        for field in ("from", "reply_to"):
            status, answer = await call(
                tenant_http,
                "POST",
                f"{url1}{agent_path(own)}/messages",
                {"payload": 1, field: f"it/globex/{foreign['id']}"},
            )
            assert status == 403 and answer["error"]["code"] == "tenant_forbidden", answer
        status, answer = await call(tenant_http, "POST", f"{url1}{agent_path(own)}/messages", {"payload": 1})
        assert status == 200, answer
        status, answer = await call(tenant_http, "DELETE", f"{url1}{agent_path(own)}")
        assert status == 403 and answer["error"]["code"] == "permission_missing"
    assert len(await drain_inbox(http, url0, own, 1)) == 1
    assert await pull_inbox(http, url0, foreign, wait_ms=300) == []


async def test_sse_inbox_delivers_and_an_ack_through_the_other_worker_counts(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    agent = await register(http, url0)
    stream = await open_sse(http, f"{url0}{agent_path(agent)}/inbox")
    try:
        await send(http, url1, agent, {"sse": 1})
        event = await stream.next_event(15)
        assert event.event == "delivery" and event.json["payload"] == {"sse": 1}
        await ack_inbox(http, url1, agent, [event.json])
    finally:
        stream.close()
    assert await pull_inbox(http, url1, agent, wait_ms=500) == []


async def test_operator_states_and_their_transitions(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    tenant = unique("st")
    agent = await register(http, url0, tenant=tenant)
    state_url = f"{url1}{agent_path(agent)}/state"
    changed = await ok(http, "PUT", state_url, {"state": "draining", "reason": "upgrade"})
    assert changed["state"] == "draining"
    await send(http, url0, agent, "still welcome while draining")
    changed = await ok(http, "PUT", state_url, {"state": "disabled"})
    assert changed["state"] == "disabled"
    assert (await ok(http, "PUT", state_url, {"state": "disabled"}))["state"] == "disabled", "no-op"
    status, body = await call(http, "PUT", state_url, {"state": "draining"})
    assert status == 409 and body["error"]["code"] == "illegal_transition"
    assert body["error"]["details"] == {"from": "disabled", "to": "draining", "allowed": ["enabled"]}
    for url in fleet.urls:
        status, body = await call(http, "POST", f"{url}{agent_path(agent)}/messages", {"payload": "no"})
        assert status == 409 and body["error"]["code"] == "agent_disabled"
    receipt = await beat(http, url0, agent)
    assert receipt["state"] == "disabled", "a disabled agent still beats and learns its state"
    await ok(http, "PUT", state_url, {"state": "enabled"})
    await send(http, url1, agent, "welcome back")
    got = await drain_inbox(http, url0, agent, 2)
    assert [d["payload"] for d in got] == ["still welcome while draining", "welcome back"]
    for bad in ({"state": "paused"}, {}, {"state": "enabled", "extra": 1}):
        status, body = await call(http, "PUT", state_url, bad)
        assert status == 422 and body["error"]["code"] == "invalid_request", bad
    events = [e for e in await read_events(http, url1, tenant, idle=1.5) if e["type"] == "agent.state"]
    assert [(e["from"], e["to"]) for e in events] == [
        ("enabled", "draining"),
        ("draining", "disabled"),
        ("disabled", "enabled"),
    ]
    assert events[0]["reason"] == "upgrade"


async def test_delete_removes_the_agent_and_its_inbox(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    tenant = unique("dl")
    agent = await register(http, url0, tenant=tenant)
    await send(http, url1, agent, "unread")
    deleted = await ok(http, "DELETE", f"{url1}{agent_path(agent)}")
    assert deleted["id"] == agent["id"]
    for method, suffix, body in (
        ("GET", "", None),
        ("DELETE", "", None),
        ("PUT", "/state", {"state": "disabled"}),
        ("POST", "/heartbeat", {}),
        ("POST", "/messages", {"payload": 1}),
        ("POST", "/inbox/pull", {"wait_ms": 0}),
        ("POST", "/inbox/ack", {"delivery_ids": ["x.0.0.0.1"]}),
        ("GET", "/inbox", None),
    ):
        for url in fleet.urls:
            status, answer = await call(http, method, f"{url}{agent_path(agent)}{suffix}", body)
            assert status == 404 and answer["error"]["code"] == "agent_not_found", (method, suffix, answer)
    listed = await ok(http, "GET", f"{url0}/v1/agents?tenant={tenant}")
    assert listed["agents"] == []
    again = await register(http, url1, tenant=tenant, id=agent["id"])  # the id is free again
    assert again["liveness"] == "unknown"
    await send(http, url0, again, "fresh")
    [only] = await drain_inbox(http, url1, again, 1)
    assert only["payload"] == "fresh", "the old incarnation's unread message is not delivered"
    assert await pull_inbox(http, url0, again, wait_ms=300) == []
    types = [e["type"] for e in await read_events(http, url0, tenant, idle=1.5)]
    assert types == ["agent.registered", "agent.deleted", "agent.registered"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"id": "Not_An_Id"}, 422, "invalid_request"),
        ({"heartbeat_interval_ms": 499}, 422, "invalid_request"),
        ({"capabilities": [ADD, ADD]}, 422, "invalid_request"),
        ({"capabilities": [{**ADD, "name": f"t{i}"} for i in range(65)]}, 422, "invalid_request"),
        ({"capabilities": [{**ADD, "name": "has space"}]}, 422, "invalid_request"),
        ({"capabilities": [{**ADD, "input_schema": {"type": "nope"}}]}, 422, "invalid_schema"),
        ({"capabilities": [{**ADD, "output_schema": {"$ref": "http://x/y"}}]}, 422, "invalid_schema"),
        ({"capabilities": [{**ADD, "input_schema": {"description": "x" * 70_000}}]}, 413, "schema_too_large"),
        ({"card": {"name": "n", "description": "d", "skills": []}}, 422, "invalid_request"),
        (
            {"card": {"name": "n", "description": "d", "version": "1", "skills": [{"id": "s"}]}},
            422,
            "invalid_request",
        ),
        ({"state": "sleeping"}, 422, "invalid_request"),
        ({"inbox": {"max_deliveries": 0}}, 422, "invalid_request"),
        ({"colour": "blue"}, 422, "invalid_request"),
    ],
)
async def test_bad_registrations_are_refused_and_write_nothing(
    fleet: Fleet, http: aiohttp.ClientSession, change: dict[str, Any], status: int, code: str
) -> None:
    body = {"namespace": "it", "tenant": "acme", "id": unique("bad"), **change}
    got, answer = await call(http, "POST", f"{fleet.urls[1]}/v1/agents", body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    if code == "invalid_schema":
        assert answer["error"]["details"]["capability"] == "add"
    got, answer = await call(http, "GET", f"{fleet.urls[0]}/v1/agents/it/acme/{body['id']}")
    # nothing was registered: an id that is no agent name is refused before any lookup
    assert got == (400 if NAME_RE.match(body["id"]) is None else 404), answer


async def test_a_card_in_a2a_shape_is_kept_as_given(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    card = {
        "name": "Planner",
        "description": "Plans",
        "version": "2.1.0",
        "url": "https://agents.example/planner",
        "defaultInputModes": ["application/json"],
        "capabilities": {"streaming": False},
        "skills": [{"id": "plan", "name": "Plan", "description": "Makes a plan", "tags": ["planning"]}],
    }
    agent = await register(http, fleet.urls[0], card=card, display_name="The planner")
    found = await ok(http, "GET", f"{fleet.urls[1]}{agent_path(agent)}")
    assert found["card"] == card
    assert found["display_name"] == "The planner"


async def test_bad_messages_and_heartbeats_are_refused(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    agent = await register(http, url0)
    path = agent_path(agent)
    for body, status, code in (
        ({"payload": 1, "headers": {"bus.to": "x"}}, 400, "reserved_header"),
        ({"payload": "x" * 70_000}, 413, "payload_too_large"),
        ({}, 422, "invalid_request"),
        ({"payload": 1, "from": "Bad Agent"}, 422, "invalid_request"),
        ({"payload": 1, "content_type": "json"}, 422, "invalid_request"),
        ({"payload": 1, "to": "someone"}, 422, "invalid_request"),
    ):
        got, answer = await call(http, "POST", f"{url1}{path}/messages", body)
        assert (got, answer["error"]["code"]) == (status, code), (body, answer)
    async with http.post(
        f"{url1}{path}/messages", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    got, answer = await call(
        http, "POST", f"{url0}/v1/agents/it/acme/{unique('nobody')}/messages", {"payload": 1}
    )
    assert (got, answer["error"]["code"]) == (404, "agent_not_found")
    got, answer = await call(http, "POST", f"{url1}{path}/heartbeat", {"status": "x" * 300})
    assert (got, answer["error"]["code"]) == (422, "invalid_request")
    async with http.post(f"{url1}{path}/heartbeat") as r:  # no body at all is fine
        assert r.status == 202, await r.text()
    got, answer = await call(http, "POST", f"{url1}{path}/heartbeat", {"status": "busy"})
    assert got == 202
    deadline = asyncio.get_running_loop().time() + 10
    while (await ok(http, "GET", f"{url0}{path}"))["status"] != "busy":
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    assert await pull_inbox(http, url0, agent, wait_ms=300) == [], "refused messages wrote nothing"


async def test_a_pull_abandoned_mid_wait_takes_nothing_once_its_session_is_released(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    """An agent that stops mid-pull releases its session; the pull still waiting on the bus
    must not lease the next message to nobody (it would wait for its ack deadline)."""
    url0, url1 = fleet.urls
    agent = await register(http, url0, inbox={"ack_deadline_ms": 60_000})
    path = f"{url1}{agent_path(agent)}/inbox"

    async def abandoned_pull() -> None:
        async with http.post(f"{path}/pull", json={"wait_ms": 15_000, "session": "gone"}) as r:
            await r.read()

    task = asyncio.create_task(abandoned_pull())
    await asyncio.sleep(1.0)
    task.cancel()
    assert (await ok(http, "POST", f"{path}/release", {"session": "gone"}))["released"] == 0
    await send(http, url0, agent, "not lost")
    [got] = await pull_inbox(http, url0, agent, wait_ms=5000)
    assert (got["payload"], got["delivery_count"]) == ("not lost", 1)


async def test_registering_is_audited_and_the_data_plane_is_not(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    tenant = unique("au")
    agent = await register(http, url0, tenant=tenant)
    await beat(http, url1, agent)
    await send(http, url1, agent, "hello")
    await drain_inbox(http, url0, agent, 1)
    found = await ok(http, "GET", f"{url0}/v1/audit?namespace=it&tenant={tenant}")
    # (a request forwarded to the owner is recorded by both workers)
    assert {r["action"] for r in found["records"]} == {"agents.register"}


async def test_registrations_for_fresh_tenants_through_both_workers_all_succeed(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    """Each registration creates its tenant's agent-events topic and publishes to it at once;
    none may answer 404 topic_not_found for the bus's own topic, and the same body again
    answers 200 with the agent (a retry of a registration that did register)."""
    bodies: list[dict[str, Any]] = [
        {"namespace": "it", "tenant": unique("fresh"), "id": unique("a"), "labels": {"n": str(i)}}
        for i in range(12)
    ]
    answers = await asyncio.gather(
        *(call(http, "POST", f"{fleet.urls[i % 2]}/v1/agents", b) for i, b in enumerate(bodies))
    )
    assert [status for status, _ in answers] == [201] * len(bodies), answers
    for i, body in enumerate(bodies):
        status, again = await call(http, "POST", f"{fleet.urls[(i + 1) % 2]}/v1/agents", body)
        assert status == 200 and again["created_at"] == answers[i][1]["created_at"], again
    for i, body in enumerate(bodies[:2]):  # one registered through each worker
        events = await read_events(http, fleet.urls[(i + 1) % 2], body["tenant"])
        assert [e["type"] for e in events] == ["agent.registered"], events
    status, other = await call(http, "POST", f"{fleet.urls[0]}/v1/agents", {**bodies[0], "labels": {}})
    assert status == 409 and other["error"]["code"] == "agent_exists"
