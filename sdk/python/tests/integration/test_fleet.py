"""The client against a real fleet: AGENTBUS_URLS (comma-separated) and AGENTBUS_ADMIN_KEY.

Without them these tests are deselected by conftest (the unit tier runs alone). Every test
works in a tenant of its own, so runs do not see each other's topics or agents.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import JsonValue

import agentbus_client as ab
from agentbus_client import AgentRuntime, AsyncClient, Client, ToolInvocation, models

pytestmark = pytest.mark.integration


@pytest.fixture
async def bus(fleet_urls: list[str], admin_key: str) -> AsyncIterator[AsyncClient]:
    tenant = "t" + secrets.token_hex(4)
    async with AsyncClient(fleet_urls, admin_key, namespace="sdkpy", tenant=tenant) as client:
        yield client


async def test_topics_publish_batch_and_sse_resume(bus: AsyncClient) -> None:
    topic = await bus.topics.create("orders", partitions=2)
    assert topic.partitions == 2 and topic.name in [t.name for t in await bus.topics.list()]
    with pytest.raises(ab.TopicExists):
        await bus.topics.create("orders")
    first = await bus.publish("orders", {"n": 0}, key="k")
    batch = await bus.publish_batch([{"topic": "orders", "payload": {"n": n}, "key": "k"} for n in (1, 2, 3)])
    assert first.offset is not None
    # In order after it (not first.offset + 1: the publish was written in a transaction,
    # its commit marker takes an offset)
    offsets = [first.offset, *(r.offset or 0 for r in batch)]
    assert all(r.partition == first.partition for r in batch) and offsets == sorted(set(offsets))

    stream = bus.topics.subscribe("orders", start="earliest")
    seen = []
    async for record in stream:
        seen.append(record.payload)
        if len(seen) == 2:
            break  # the connection closes here: a drop, as far as the bus can tell
    resumed = bus.topics.subscribe("orders", last_event_id=stream.last_event_id)
    async for record in resumed:
        seen.append(record.payload)
        if len(seen) == 4:
            break
    assert seen == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]  # nothing lost, nothing repeated


async def test_subscription_pull_ack_nack_lag_seek_dead_letters_redrive(bus: AsyncClient) -> None:
    await bus.topics.create("jobs", partitions=1)
    await bus.subscriptions.create(
        "workers", "jobs", start="earliest", max_deliveries=1, redelivery_backoff_ms=0
    )
    for n in range(3):
        await bus.publish("jobs", {"job": n})
    got = await _pull_at_least(bus, "workers", 3)
    assert [d.payload for d in got] == [{"job": 0}, {"job": 1}, {"job": 2}]
    assert await bus.subscriptions.ack("workers", [got[0].delivery_id]) == 1
    nacked = await bus.subscriptions.nack("workers", [got[1].delivery_id], action="dead_letter", reason="bad")
    assert nacked.dead_lettered == 1
    await bus.subscriptions.ack("workers", [got[2].delivery_id])
    lag = await bus.subscriptions.lag("workers")
    assert lag.total_lag == 0 and lag.in_flight == 0

    letters = await _dead_letters(bus, "workers")
    assert [d.record.payload for d in letters] == [{"job": 1}] and letters[0].origin.reason == "bad"
    redriven = await bus.subscriptions.redrive("workers", all=True)
    assert redriven.redriven == [letters[0].dead_letter_id]
    again = await _pull_at_least(bus, "workers", 1)
    assert again[0].payload == {"job": 1}
    await bus.subscriptions.ack("workers", [again[0].delivery_id])

    committed = await bus.subscriptions.seek("workers", position="earliest")
    assert committed == {0: 0}
    replayed = await _pull_at_least(bus, "workers", 4)
    assert [d.payload["job"] for d in replayed if isinstance(d.payload, dict)][:3] == [0, 1, 2]
    with pytest.raises(ab.DeliveryStale):
        await bus.subscriptions.ack("workers", [got[0].delivery_id])


async def test_schemas_register_check_and_bind(bus: AsyncClient) -> None:
    v1 = await bus.schemas.register("order", {"type": "object", "properties": {"total": {"type": "number"}}})
    assert v1.version == 1
    report = await bus.schemas.check("order", {"type": "object", "properties": {"total": {"type": "string"}}})
    assert not report.compatible and report.breaking_changes
    with pytest.raises(ab.IncompatibleSchema):
        await bus.schemas.register("order", {"type": "object", "properties": {"total": {"type": "string"}}})
    summary = await bus.schemas.set_config("order", "FULL")
    assert summary.compatibility == models.CompatibilityMode.FULL
    await bus.topics.create("orders")
    await bus.topics.bind_schema("orders", "order", 1)
    with pytest.raises(ab.SchemaViolation):
        await bus.publish("orders", {"total": "many"})
    assert (await bus.schemas.versions("order"))[0].schema_ == v1.schema_


async def test_agents_register_heartbeat_and_inbox_runtime(bus: AsyncClient) -> None:
    planner = bus.with_scope(agent_id="planner")
    await planner.agents.register()
    runtime = AgentRuntime(bus.with_scope(agent_id="echo"), registration={"heartbeat_interval_ms": 1000})

    @runtime.on("message")
    async def echo(message: models.InboxMessage) -> JsonValue:
        if message.payload == "fail":
            raise RuntimeError("asked to fail")
        return {"echo": message.payload}

    async with runtime:
        assert (await bus.agents.get("echo")).id == "echo"
        await planner.agents.send("echo", "hello")
        await planner.agents.send("echo", "fail")
        replies = await _inbox_at_least(planner, 1)
        assert (
            replies[0].payload == {"echo": "hello"} and replies[0].from_ == f"sdkpy/{bus.scope.tenant}/echo"
        )
        await planner.agents.ack([m.delivery_id for m in replies])
        receipt = await bus.agents.heartbeat("echo", status="busy")
        assert receipt.state == "enabled"
    assert runtime.handled >= 1 and runtime.failed >= 1 and runtime.state == "enabled"


async def test_conversation_append_replay_follow(bus: AsyncClient) -> None:
    conv = await bus.conversations.create(participants=["planner", "solver"], title="trip")
    follower = bus.conversations.follow(conv.id, from_seq=1)
    m1 = await bus.conversations.append(conv.id, {"text": "hi"}, sender="planner", message_id="m-1")
    again = await bus.conversations.append(conv.id, {"text": "hi"}, sender="planner", message_id="m-1")
    assert again.seq == m1.seq == 1  # idempotent by message_id
    await bus.conversations.append(conv.id, {"text": "yo"}, sender="solver")
    with pytest.raises(ab.NotAParticipant):
        await bus.conversations.append(conv.id, "x", sender="mallory")
    assert [m.seq async for m in bus.conversations.replay(conv.id, page_size=1)] == [1, 2]
    seen: list[int] = []
    async for event in follower:
        if isinstance(event, models.Message):
            seen.append(event.seq)
        if len(seen) == 2:
            break
    assert seen == [1, 2] and follower.last_event_id == "2"
    closed = await bus.conversations.transition(conv.id, "closed")
    assert closed.state == "closed"


async def test_tool_call_and_serve_with_a_streamed_reply_and_an_approval(bus: AsyncClient) -> None:
    planner = bus.with_scope(agent_id="planner")
    await planner.agents.register()
    solver = AgentRuntime(bus.with_scope(agent_id="solver"))

    @solver.tool("add", input_schema={"type": "object", "required": ["numbers"]})
    async def add(call: ToolInvocation) -> JsonValue:
        async with call.client.streams.writer(call.call.conversation, f"reply-{call.call.call_id}") as out:
            for n in call.arguments["numbers"]:
                await out.write({"n": n})
        return {"sum": sum(call.arguments["numbers"])}

    @solver.tool("fail")
    async def fail(call: ToolInvocation) -> JsonValue:
        raise ab.ToolFailure("nope", "this tool always fails")

    @solver.tool("pay", requires_approval=True)
    async def pay(call: ToolInvocation) -> JsonValue:
        return {"paid": call.arguments["amount"]}

    conv = await bus.conversations.create()
    async with solver:
        done = await planner.tool_calls.call(conv.id, "solver", "add", {"numbers": [1, 2, 3]}, wait_s=30)
        assert done.status == "done" and done.result is not None and done.result.result == {"sum": 6}
        chunks = [e async for e in bus.streams.read(conv.id, f"reply-{done.call_id}")]
        assert [c.data for c in chunks if isinstance(c, models.StreamChunk)] == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert isinstance(chunks[-1], models.StreamEnd) and chunks[-1].status == "complete"

        failed = await planner.tool_calls.call(conv.id, "solver", "fail", {}, wait_s=30)
        assert failed.status == "failed" and failed.result is not None and failed.result.error is not None
        assert failed.result.error.code == "nope"

        parked = await planner.tool_calls.place(conv.id, "solver", "pay", {"amount": 5})
        assert parked.status == "awaiting_approval" and parked.approval_id is not None
        approval = await bus.approvals.get(parked.approval_id)
        assert approval.state == "pending"
        with pytest.raises(ab.DigestMismatch):
            await bus.approvals.approve(approval.approval_id, "0" * 64)
        approved = await bus.approvals.approve(approval.approval_id, approval.digest, reason="ok")
        assert approved.state == "approved"
        paid = await planner.tool_calls.wait(parked.call_id, 30)
        assert paid.status == "done" and paid.result is not None and paid.result.result == {"paid": 5}
        located = await bus.tool_calls.location(done.call_id)
        assert located == models.CallLocation(conversation=f"sdkpy/{bus.scope.tenant}/{conv.id}")
        with pytest.raises(ab.NotFound):
            await bus.tool_calls.location("no-such-call")


async def test_system_health_whoami_workers_watch_and_inbox_lag(bus: AsyncClient) -> None:
    assert (await bus.system.live()).status in ("ok", "starting")
    assert (await bus.system.ready()).ready is True
    me = await bus.system.whoami()
    assert me.admin is True and me.key_id
    fleet = await bus.system.workers()
    assert fleet.answered_by in [w.url for w in fleet.workers] and all(w.up for w in fleet.workers if w.ready)

    planner = bus.with_scope(agent_id="planner")
    await planner.agents.register()
    await planner.agents.send("planner", "to myself")
    for _ in range(30):
        lag = await planner.agents.inbox_lag()
        if lag.total_lag >= 1:
            break
        await asyncio.sleep(0.2)
    assert lag.total_lag >= 1 and lag.subscription == f"sdkpy/{bus.scope.tenant}/inbox.planner"

    topics = f"/v1/topics?namespace=sdkpy&tenant={bus.scope.tenant}"
    watch = bus.system.watch([topics, "/v1/no-such-route"], interval_ms=1000)
    names: list[list[str]] = []
    async for snapshot in watch:
        first, missing = snapshot.results
        assert (first.path, missing.status) == (topics, 404)  # an error answer is a result
        assert isinstance(first.body, dict) and isinstance(first.body["topics"], list)
        names.append([str(t["name"]) for t in first.body["topics"] if isinstance(t, dict)])
        if len(names) == 1:
            await bus.topics.create("watched")  # the next snapshot comes when the answer changes
        else:
            break
    assert set(names[1]) - set(names[0]) == {"watched"}  # the agent's own topics were there already


async def test_stream_over_http_and_a_consumer_cancel(bus: AsyncClient) -> None:
    conv = await bus.conversations.create()
    async with bus.streams.writer(conv.id, "s-http", transport="http", batch_size=2) as out:
        for n in range(5):
            await out.write(n)
    assert out.end is not None and out.end.last_chunk_seq == 4
    events = [e async for e in bus.streams.read(conv.id, "s-http")]
    assert [e.data for e in events if isinstance(e, models.StreamChunk)] == [0, 1, 2, 3, 4]

    writer = bus.streams.writer(conv.id, "s-ws")
    with pytest.raises(ab.StreamCancelled):
        async with writer:
            await writer.write("a")
            await writer.flush()
            await bus.streams.cancel(conv.id, "s-ws", reason="enough")
            for _ in range(100):
                await writer.write("more")
                await writer.flush()
                await asyncio.sleep(0.05)


def test_the_sync_client_on_the_fleet(fleet_urls: list[str], admin_key: str) -> None:
    with Client(fleet_urls, admin_key, namespace="sdkpy", tenant="s" + secrets.token_hex(4)) as bus:
        bus.topics.create("events")
        receipt = bus.publish("events", {"sync": True})
        for record in bus.topics.subscribe("events", start="earliest"):
            assert record.offset == receipt.offset and record.payload == {"sync": True}
            break
        key = bus.keys.create("reader", grants=[{"actions": ["read"]}])
        assert key.secret and bus.keys.get(key.id).name == "reader"
        bus.rules.put(
            [
                {
                    "id": "no-spam",
                    "match": {"headers": {"spam": "yes"}},
                    "action": {"type": "deny", "reason": "spam"},
                }
            ]
        )
        # In force on the answering worker at once, on the other as it replicates
        # (docs/rules.md): the client's next request may reach either.
        denied = False
        for _ in range(50):
            try:
                bus.publish("events", 1, headers={"spam": "yes"})
            except ab.RuleDenied:
                denied = True
                break
            time.sleep(0.1)
        assert denied


async def _pull_at_least(bus: AsyncClient, sub: str, count: int) -> list[models.Delivery]:
    got: list[models.Delivery] = []
    for _ in range(30):
        got += await bus.subscriptions.pull(sub, wait_ms=1000)
        if len(got) >= count:
            return got
    raise AssertionError(f"only {len(got)} deliveries")


async def _inbox_at_least(agent: AsyncClient, count: int) -> list[models.InboxMessage]:
    got: list[models.InboxMessage] = []
    for _ in range(30):
        got += await agent.agents.pull(wait_ms=1000)
        if len(got) >= count:
            return got
    raise AssertionError(f"only {len(got)} messages")


async def _dead_letters(bus: AsyncClient, sub: str) -> list[models.DeadLetter]:
    for _ in range(50):
        found = await bus.subscriptions.dead_letters(sub)
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("no dead letter")
