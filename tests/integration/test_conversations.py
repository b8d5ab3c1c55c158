"""Conversations on the real broker and the two-worker fleet."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import committed_offsets, end_offsets, open_sse, unique
from tests.subs import call, ok

pytestmark = pytest.mark.integration
BASE = "/v1/conversations/it/acme"


async def new_conversation(http: aiohttp.ClientSession, url: str, **spec: Any) -> str:
    conversation_id = unique("c")
    body = {"namespace": "it", "tenant": "acme", "id": conversation_id, **spec}
    created = await ok(http, "POST", f"{url}/v1/conversations", body, 201)
    assert created["state"] == "open" and created["message_count"] == 0
    return f"{BASE}/{conversation_id}"


async def say(http: aiohttp.ClientSession, url: str, conv: str, sender: str, payload: Any) -> dict[str, Any]:
    message: dict[str, Any] = await ok(
        http, "POST", f"{url}{conv}/messages", {"sender": sender, "payload": payload}, 201
    )
    return message


async def test_any_worker_answers_for_any_conversation(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    conv = await new_conversation(http, url0, participants=["planner", "solver"], labels={"team": "x"})
    for url in fleet.urls:
        found = await ok(http, "GET", f"{url}{conv}")
        assert found["participants"] == ["planner", "solver"] and found["labels"] == {"team": "x"}
    status, body = await call(
        http,
        "POST",
        f"{url1}/v1/conversations",
        {"namespace": "it", "tenant": "acme", "id": conv.rsplit("/", 1)[1]},
    )
    assert status == 409 and body["error"]["code"] == "conversation_exists"
    listed = await ok(http, "GET", f"{url1}/v1/conversations?namespace=it&tenant=acme&label=team=x")
    assert conv.rsplit("/", 1)[1] in [c["id"] for c in listed["conversations"]]
    listed = await ok(http, "GET", f"{url0}/v1/conversations?participant=nobody-else&label=team=x")
    assert listed["conversations"] == []


async def test_messages_get_gap_free_sequence_numbers_under_concurrent_appends(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    conv = await new_conversation(http, fleet.urls[0])

    async def writer(url: str, name: str) -> list[int]:
        seqs = []
        for i in range(40):
            seqs.append((await say(http, url, conv, name, {"from": name, "i": i}))["seq"])
        return seqs

    a, b = await asyncio.gather(writer(fleet.urls[0], "alpha"), writer(fleet.urls[1], "beta"))
    assert sorted(a + b) == list(range(1, 81)), "every number once, no gaps"
    assert a == sorted(a) and b == sorted(b)
    found = await ok(http, "GET", f"{fleet.urls[1]}{conv}")
    assert found["message_count"] == 80 and found["state"] == "active"

    page = await ok(http, "GET", f"{fleet.urls[1]}{conv}/messages?limit=1000")
    assert [m["seq"] for m in page["messages"]] == list(range(1, 81))
    assert page["next_from_seq"] is None
    by_sender = {
        name: [m["payload"]["i"] for m in page["messages"] if m["sender"] == name]
        for name in ("alpha", "beta")
    }
    assert by_sender == {"alpha": list(range(40)), "beta": list(range(40))}, "each writer's order is kept"


async def test_replay_by_sequence_number_and_by_time_pages_through_kafka(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    conv = await new_conversation(http, url)
    for i in range(1, 151):
        await say(http, url, conv, "a", i)
    page = await ok(http, "GET", f"{url}{conv}/messages?from_seq=70&limit=25")
    assert [m["seq"] for m in page["messages"]] == list(range(70, 95)) and page["next_from_seq"] == 95
    page = await ok(http, "GET", f"{fleet.urls[1]}{conv}/messages?from_seq=140&to_seq=145")
    assert [m["payload"] for m in page["messages"]] == list(range(140, 146)) and page["next_from_seq"] is None

    await asyncio.sleep(0.05)
    cut = int(time.time() * 1000)
    await asyncio.sleep(0.05)
    for i in range(151, 154):
        await say(http, url, conv, "a", i)
    page = await ok(http, "GET", f"{url}{conv}/messages?since={cut}")
    assert [m["seq"] for m in page["messages"]] == [151, 152, 153]


async def test_states_move_only_along_the_allowed_transitions(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    conv = await new_conversation(http, url0, participants=["a"])

    async def move(to: str, url: str = url0) -> tuple[int, Any]:
        return await call(http, "POST", f"{url}{conv}/transition", {"to": to})

    await say(http, url1, conv, "a", "hi")
    assert (await ok(http, "GET", f"{url1}{conv}"))["state"] == "active"
    status, body = await call(http, "POST", f"{url0}{conv}/messages", {"sender": "b", "payload": 1})
    assert status == 403 and body["error"]["code"] == "not_a_participant"
    assert (await move("paused"))[1]["state"] == "paused"
    status, body = await call(http, "POST", f"{url1}{conv}/messages", {"sender": "a", "payload": 2})
    assert status == 409 and body["error"]["code"] == "conversation_not_open"
    assert (await move("active", url1))[1]["state"] == "active"
    assert (await move("closed"))[1]["state"] == "closed"
    status, body = await move("active")
    assert status == 409 and body["error"]["code"] == "illegal_transition"
    assert body["error"]["details"]["allowed"] == ["archived"]
    status, body = await call(http, "POST", f"{url0}{conv}/messages", {"sender": "a", "payload": 3})
    assert status == 409 and body["error"]["code"] == "conversation_not_open"
    assert (await move("archived", url1))[1]["state"] == "archived"
    status, body = await move("closed")
    assert status == 409 and body["error"]["details"]["allowed"] == []
    final = await ok(http, "GET", f"{url0}{conv}")
    assert final["message_count"] == 1


async def test_stream_replays_from_a_sequence_number_then_follows_live(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    conv = await new_conversation(http, url0)
    for i in range(1, 4):
        await say(http, url0, conv, "a", i)
    for url in (url0, url1):  # owner and non-owner alike
        stream = await open_sse(http, f"{url}{conv}/stream?from_seq=2")
        replayed = await stream.events(2)
        assert [(e.event, e.id, e.json["payload"]) for e in replayed] == [
            ("message", "2", 2),
            ("message", "3", 3),
        ]
        stream.close()
    stream = await open_sse(http, f"{url1}{conv}/stream", headers={"Last-Event-ID": "3"})
    await say(http, url0, conv, "a", 4)
    [live] = await stream.events(1)
    assert (live.event, live.id, live.json["seq"]) == ("message", "4", 4)
    await ok(http, "POST", f"{url0}{conv}/transition", {"to": "closed"})
    [state] = await stream.events(1)
    assert state.event == "state" and state.json["state"] == "closed"
    stream.close()


async def test_delete_and_bad_input(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url = fleet.urls[1]
    missing = f"{BASE}/{unique('none')}"
    for method, suffix, body in [
        ("GET", "", None),
        ("GET", "/messages", None),
        ("POST", "/transition", {"to": "closed"}),
        ("POST", "/messages", {"sender": "a", "payload": 1}),
        ("DELETE", "", None),
    ]:
        status, answer = await call(http, method, f"{url}{missing}{suffix}", body)
        assert status == 404 and answer["error"]["code"] == "conversation_not_found", (method, suffix)

    conv = await new_conversation(http, url)
    bad_bodies: list[tuple[str, dict[str, Any]]] = [
        ("/transition", {"to": "finished"}),
        ("/messages", {"sender": "Not A Name", "payload": 1}),
        ("/messages", {"payload": 1}),
        ("/messages", {"sender": "a", "payload": 1, "extra": True}),
    ]
    for suffix, bad in bad_bodies:
        status, answer = await call(http, "POST", f"{url}{conv}{suffix}", bad)
        assert status == 422 and answer["error"]["code"] == "invalid_request", suffix
    for query in ("from_seq=0", "limit=5000", "since=yesterday", "to_seq=-1"):
        status, answer = await call(http, "GET", f"{url}{conv}/messages?{query}")
        assert status == 400 and answer["error"]["code"] == "invalid_parameter", query
    status, answer = await call(http, "GET", f"{url}/v1/conversations?label=nolabel")
    assert status == 400
    status, answer = await call(
        http,
        "POST",
        f"{url}/v1/conversations",
        {"namespace": "it", "tenant": "acme", "participants": ["A B"]},
    )
    assert status == 422

    await ok(http, "DELETE", f"{url}{conv}")
    status, answer = await call(http, "GET", f"{fleet.urls[0]}{conv}")
    assert status == 404
    created = await ok(http, "POST", f"{url}/v1/conversations", {"namespace": "it", "tenant": "acme"}, 201)
    assert len(created["id"]) == 32, "an id is made up when none is given"


async def test_the_processors_commit_past_a_burst_of_appends_soon_after_it(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    """Each append to one conversation is a transaction of its own: a record, then a commit
    marker. Faust's offset bookkeeping used to stop each commit one record further on over
    such a log, so after 100 appends the fleet's group sat ~100 records behind the
    conversations view for minutes (and every rebalance handed them over again)."""
    topic = f"{fleet.prefix}-conversations"
    conv = await new_conversation(http, fleet.urls[0])
    before = await end_offsets(fleet.bootstrap, topic)
    for i in range(100):
        await say(http, fleet.urls[0], conv, "planner", {"i": i})
    after = await end_offsets(fleet.bootstrap, topic)
    [partition] = [p for p in after if after[p] - before.get(p, 0) >= 200]
    last_record = after[partition] - 2  # the last append, then its commit marker
    committed = -1
    for _ in range(60):  # Faust commits every 2.8 s
        committed = (await committed_offsets(fleet.bootstrap, fleet.prefix, topic)).get(partition, -1)
        if committed > last_record:
            break
        await asyncio.sleep(0.5)
    assert committed > last_record, (partition, committed, after[partition])
