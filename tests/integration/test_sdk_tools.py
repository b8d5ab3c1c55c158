"""The SDK's helpers for tool calls, token streams and approvals (bus.sdk.client,
bus.sdk.streams), against the real broker and fleet: the caller on one worker, the callee,
readers and approvers on the other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest

from bus.sdk.client import BusAgentError, BusClient
from bus.sdk.streams import StreamChunk, StreamEvent, StreamGap
from bus.streams.models import StreamEnd
from bus.tools.models import ToolError, Usage
from tests.agent_calls import register
from tests.fleet import Fleet
from tests.helpers import unique
from tests.integration.test_approvals import PAY
from tests.integration.test_tool_calls import ADD, inbox_of
from tests.subs import ok

pytestmark = pytest.mark.integration


async def conversation(http: aiohttp.ClientSession, url: str, *participants: str) -> str:
    conv_id = unique("sdk")
    body = {"namespace": "it", "tenant": "acme", "id": conv_id, "participants": list(participants)}
    await ok(http, "POST", f"{url}/v1/conversations", body, 201)
    return conv_id


@pytest.fixture
async def clients(fleet: Fleet) -> AsyncIterator[dict[str, BusClient]]:
    """Clients of tenant it/acme through worker 0 and worker 1; `as_agent` makes agents' ones."""
    made: list[BusClient] = []

    def client(url: str, agent_id: str | None = None) -> BusClient:
        made.append(BusClient(url, fleet.admin_key, namespace="it", tenant="acme", agent_id=agent_id))
        return made[-1]

    yield {"a": client(fleet.urls[0]), "b": client(fleet.urls[1])}
    for c in made:
        await c.close()


def as_agent(fleet: Fleet, worker: int, agent: dict[str, Any]) -> BusClient:
    return BusClient(fleet.urls[worker], fleet.admin_key, namespace="it", tenant="acme", agent_id=agent["id"])


async def test_a_tool_call_round_trip_waits_for_the_result(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    caller_agent = await register(http, url0)
    callee_agent = await register(http, url0, capabilities=[ADD])
    conv = await conversation(http, url0, caller_agent["id"], callee_agent["id"])
    async with as_agent(fleet, 0, caller_agent) as caller, as_agent(fleet, 1, callee_agent) as callee:

        async def serve_one() -> dict[str, Any]:
            [delivery] = await inbox_of(http, url1, callee_agent, 1)
            call: dict[str, Any] = delivery["payload"]
            await asyncio.sleep(0.5)  # the caller is waiting meanwhile
            settled = await callee.tool_result(
                conv, call["call_id"], sum(call["arguments"]["numbers"]), usage=Usage(output_tokens=2)
            )
            assert settled.status == "done"
            return call

        server = asyncio.create_task(serve_one())
        began = time.monotonic()
        done = await caller.call_tool(
            conv, callee_agent["id"], "add", {"numbers": [1, 2, 4]}, correlation_id="c-1", wait_ms=20_000
        )
        delivered = await server
        assert time.monotonic() - began >= 0.5, "call_tool waited for the result"
        assert (done.status, done.caller, done.callee, done.correlation_id) == (
            "done",
            caller_agent["id"],
            callee_agent["id"],
            "c-1",
        )
        assert done.result is not None and (done.result.result, done.result.by) == (7, "agent")
        assert done.result.usage is not None and done.result.usage.output_tokens == 2
        assert delivered["call_id"] == done.call_id and done.seq == 1

        again = await callee.tool_result(conv, done.call_id, 7, usage=Usage(output_tokens=2))
        assert again.status == "done", "the same result again is our own retry, not an error"
        with pytest.raises(BusAgentError) as refused:
            await callee.tool_result(conv, done.call_id, 8)
        assert (refused.value.status, refused.value.code) == (409, "tool_result_exists")
        assert refused.value.details["result"]["result"] == 7

        # A placement retried with its call_id is the same call; another call under that id is not.
        same = await caller.call_tool(
            conv, callee_agent["id"], "add", {"numbers": [1, 2, 4]}, call_id=done.call_id
        )
        assert (same.call_id, same.seq, same.status) == (done.call_id, 1, "done")
        with pytest.raises(BusAgentError) as exists:
            await caller.call_tool(conv, callee_agent["id"], "add", {"numbers": [9]}, call_id=done.call_id)
        assert exists.value.code == "tool_call_exists"
        with pytest.raises(BusAgentError) as unknown:
            await caller.call_tool(conv, callee_agent["id"], "multiply", {"numbers": [1]})
        assert (unknown.value.status, unknown.value.code) == (404, "tool_not_found")


async def test_a_call_that_nobody_answers_waits_then_is_cancelled(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    caller_agent = await register(http, fleet.urls[0])
    callee_agent = await register(http, fleet.urls[0], capabilities=[ADD])
    conv = await conversation(http, fleet.urls[1], caller_agent["id"], callee_agent["id"])
    async with as_agent(fleet, 1, caller_agent) as caller, as_agent(fleet, 0, callee_agent) as callee:
        parent = await caller.call_tool(conv, callee_agent["id"], "add", {"numbers": [1]})
        child = await caller.call_tool(
            conv,
            callee_agent["id"],
            "add",
            {"numbers": [2]},
            parent_call_id=parent.call_id,
            timeout_ms=30_000,
        )
        assert (parent.status, child.status) == ("pending", "pending")
        began = time.monotonic()
        waited = await caller.call_tool(conv, callee_agent["id"], "add", {"numbers": [3]}, wait_ms=400)
        assert waited.status == "pending" and 0.4 <= time.monotonic() - began < 10

        assert await caller.cancel_call(parent.call_id, "changed plans") == [parent.call_id, child.call_id]
        found = await callee.get_call(child.call_id)
        assert found.status == "cancelled" and found.result is not None
        assert found.result.error == ToolError(code="cancelled", message="changed plans")
        with pytest.raises(BusAgentError) as late:
            await callee.tool_result(conv, child.call_id, error=ToolError(code="boom", message="too late"))
        assert (late.value.status, late.value.code) == (409, "tool_call_cancelled")


async def read_all(client: BusClient, conv: str, stream_id: str) -> list[StreamEvent]:
    return [event async for event in client.read_stream(conv, stream_id, gap_timeout_ms=500)]


@pytest.mark.parametrize("transport", ["http", "ws"])
async def test_a_stream_written_in_batches_is_read_back_in_order(
    fleet: Fleet, http: aiohttp.ClientSession, clients: dict[str, BusClient], transport: Literal["http", "ws"]
) -> None:
    writer_agent = await register(http, fleet.urls[0])
    conv = await conversation(http, fleet.urls[0], writer_agent["id"])
    sid = unique("s")
    reader = asyncio.create_task(read_all(clients["b"], conv, sid))
    await asyncio.sleep(0.5)  # the reader waits for the first chunk
    count = 300
    async with as_agent(fleet, 0, writer_agent) as producer:
        async with producer.stream(conv, sid, transport=transport) as s:
            for i in range(count):
                assert await s.write(f"t{i}") == i
                await asyncio.sleep(0)  # a fast model: it yields, but does not wait for the bus
            s.usage = Usage(output_tokens=count)
        assert 1 <= s.requests <= count // 10, f"{s.requests} POSTs: chunks are sent in batches"
        assert s.end is not None and (s.end.status, s.end.last_chunk_seq) == ("complete", count - 1)
        with pytest.raises(RuntimeError):
            await s.write("after the end")

    for events in (await reader, await read_all(clients["a"], conv, sid)):  # live, then a replay
        assert [(e.chunk_seq, e.data) for e in events if isinstance(e, StreamChunk)] == [
            (i, f"t{i}") for i in range(count)
        ]
        assert not [e for e in events if isinstance(e, StreamGap)]
        end = events[-1]
        assert isinstance(end, StreamEnd) and end.status == "complete"
        assert end.usage is not None and end.usage.output_tokens == count
    thread = await ok(http, "GET", f"{fleet.urls[1]}/v1/conversations/it/acme/{conv}/messages")
    assert [(m["kind"], m["sender"]) for m in thread["messages"]] == [("stream_end", writer_agent["id"])]


@pytest.mark.parametrize("transport", ["http", "ws"])
async def test_a_failing_block_ends_its_stream_with_error_and_a_cancel_stops_the_writer(
    fleet: Fleet, http: aiohttp.ClientSession, clients: dict[str, BusClient], transport: Literal["http", "ws"]
) -> None:
    conv = await conversation(http, fleet.urls[1])
    failed, cancelled = unique("s"), unique("s")
    a, b = clients["a"], clients["b"]
    with pytest.raises(ZeroDivisionError):
        async with a.stream(conv, failed, transport=transport) as s:
            for token in ("one", "two", "three"):
                await s.write(token)
            _ = 1 / 0
    events = await read_all(b, conv, failed)
    assert [e.data for e in events if isinstance(e, StreamChunk)] == ["one", "two", "three"]
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.status == "error" and "ZeroDivisionError" in end.error

    with pytest.raises(BusAgentError) as stopped:
        async with b.stream(conv, cancelled, transport=transport) as s:
            await s.write("x")
            await s.flush()
            assert (await a.cancel_stream(conv, cancelled, "user pressed stop")).by == "consumer"
            await s.write("y")
            await s.flush()
    assert stopped.value.code == "stream_cancelled" and s.end is None, "no end after the consumer's cancel"
    events = await read_all(a, conv, cancelled)
    assert [e.data for e in events if isinstance(e, StreamChunk)] == ["x"]
    end = events[-1]
    assert isinstance(end, StreamEnd) and (end.status, end.error) == ("cancelled", "user pressed stop")


async def test_an_approval_is_listed_approved_and_the_call_goes_on(
    fleet: Fleet, http: aiohttp.ClientSession, clients: dict[str, BusClient]
) -> None:
    caller_agent = await register(http, fleet.urls[0])
    callee_agent = await register(http, fleet.urls[0], capabilities=[PAY])
    conv = await conversation(http, fleet.urls[0], caller_agent["id"], callee_agent["id"])
    approver = clients["b"]
    async with as_agent(fleet, 0, caller_agent) as caller, as_agent(fleet, 1, callee_agent) as callee:
        began = time.monotonic()
        parked = await caller.call_tool(conv, callee_agent["id"], "pay", {"amount": 10}, wait_ms=20_000)
        assert parked.status == "awaiting_approval" and time.monotonic() - began < 10, "no wait while parked"
        other = await caller.call_tool(conv, callee_agent["id"], "pay", {"amount": 99})
        assert parked.approval_id and other.approval_id and parked.approval_digest

        pending = await approver.approvals(state="pending", tool="pay", agent=callee_agent["id"])
        assert {p.approval_id for p in pending} == {parked.approval_id, other.approval_id}
        [shown] = [p for p in pending if p.approval_id == parked.approval_id]
        assert shown.envelope["arguments"] == {"amount": 10} and shown.digest == parked.approval_digest

        with pytest.raises(BusAgentError) as mismatch:
            await approver.approve(shown.approval_id, "0" * 64)
        assert (mismatch.value.status, mismatch.value.code) == (409, "digest_mismatch")
        decided = await approver.approve(shown.approval_id, shown.digest, "within budget")
        assert (decided.state, decided.reason, decided.published_seq) == ("approved", "within budget", 1)
        rejected = await approver.reject(other.approval_id, other.approval_digest or "", "too much")
        assert rejected.state == "rejected"
        with pytest.raises(BusAgentError) as twice:
            await approver.reject(shown.approval_id, shown.digest)
        assert twice.value.code == "already_decided"
        assert await approver.approvals(state="pending", agent=callee_agent["id"]) == []
        approved = await approver.approvals(state="approved", agent=callee_agent["id"])
        assert [a.approval_id for a in approved] == [shown.approval_id]
        assert (await approver.approval(other.approval_id)).reason == "too much"

        [delivered] = await inbox_of(http, fleet.urls[1], callee_agent, 1)
        assert delivered["payload"]["call_id"] == parked.call_id, "only the approved call reached the callee"
        await callee.tool_result(conv, parked.call_id, {"paid": 10})
        done = await caller.wait_call(parked.call_id, 20_000)
        assert done.status == "done" and done.result is not None and done.result.result == {"paid": 10}
    with pytest.raises(ValueError):
        await approver.call_tool(conv, callee_agent["id"], "pay", {"amount": 1})
