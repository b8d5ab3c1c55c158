"""One trace across agent hops and workers: a planner's tool call placed on a worker that
does not own the conversation, delivered to the tool agent, answered, and its result
delivered back, all in the trace of the traceparent the planner sent (issue 14).

The fleet's workers write their finished spans as JSON lines to AGENTBUS_TRACE_FILE (the
in-memory exporter, made readable across processes)."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.agent_calls import agent_path, register
from tests.fleet import Fleet
from tests.helpers import unique
from tests.subs import RETRIABLE, ok

pytestmark = pytest.mark.integration

TOOL = {"name": "lookup", "input_schema": {"type": "object"}, "output_schema": {"type": "string"}}
TRACE_ID = secrets.token_hex(16)
PLANNER_SPAN = secrets.token_hex(8)
Span = dict[str, Any]


def own_fleet_env(root: Path) -> dict[str, str]:
    return {"AGENTBUS_TRACE_FILE": str(root / "spans.jsonl")}


async def traced(
    http: aiohttp.ClientSession, url: str, body: Any, traceparent: str, status: int = 200
) -> tuple[Any, str]:
    """POST with a traceparent (retrying what the bus calls retriable): (body, answering worker)."""
    for _ in range(60):
        async with http.post(url, json=body, headers={"traceparent": traceparent}) as r:
            data = await r.json(content_type=None)
            code = data.get("error", {}).get("code") if isinstance(data, dict) else None
            if r.status < 503 or code not in RETRIABLE:
                assert r.status == status, (r.status, data)
                return data, r.headers.get("X-Agentbus-Worker", "")
        await asyncio.sleep(0.5)
    raise AssertionError(f"{url} kept answering 503")


async def pull_one(http: aiohttp.ClientSession, url: str, agent: dict[str, Any]) -> dict[str, Any]:
    for _ in range(20):
        data = await ok(http, "POST", f"{url}{agent_path(agent)}/inbox/pull", {"wait_ms": 1000})
        if data["deliveries"]:
            [delivery] = data["deliveries"]
            ids = {"delivery_ids": [delivery["delivery_id"]]}
            await ok(http, "POST", f"{url}{agent_path(agent)}/inbox/ack", ids)
            return dict(delivery)
    raise AssertionError(f"nothing came to {agent['id']}'s inbox")


def spans_of(fleet: Fleet, trace_id: str) -> list[Span]:
    path = Path(fleet.extra_env["AGENTBUS_TRACE_FILE"])
    spans = [json.loads(line) for line in path.read_text().splitlines()]
    return [s for s in spans if s["trace_id"] == trace_id]


def span_id_of(traceparent: str) -> str:
    _version, trace_id, span_id, _flags = traceparent.split("-")
    assert trace_id == TRACE_ID, "the delivery continues the planner's trace"
    return span_id


def one(spans: list[Span], **wanted: Any) -> Span:
    found = [s for s in spans if all(s.get(k) == v for k, v in wanted.items())]
    assert len(found) == 1, (wanted, found)
    return found[0]


async def test_a_tool_call_and_its_result_are_one_trace_across_two_workers(
    own_fleet: Fleet, admin: aiohttp.ClientSession
) -> None:
    url0 = own_fleet.urls[0]
    planner = await register(admin, url0)
    tool_agent = await register(admin, url0, capabilities=[TOOL])
    conv_id = unique("trace")
    conv = f"/v1/conversations/it/acme/{conv_id}"
    body = {
        "namespace": "it",
        "tenant": "acme",
        "id": conv_id,
        "participants": [planner["id"], tool_agent["id"]],
    }
    await ok(admin, "POST", f"{url0}/v1/conversations", body, 201)
    async with admin.get(f"{url0}{conv}") as r:
        owner = r.headers["X-Agentbus-Worker"]
    a = next(u for u in own_fleet.urls if u != owner)  # the planner's worker: it forwards
    b = owner  # the tool agent's worker

    call = {"tool": "lookup", "arguments": {}, "caller": planner["id"], "callee": tool_agent["id"]}
    placed, answered_by = await traced(
        admin, f"{a}{conv}/tool-calls", call, f"00-{TRACE_ID}-{PLANNER_SPAN}-01", 201
    )
    assert answered_by == b, "the call was placed on its owner, through the other worker"

    delivered = await pull_one(admin, b, tool_agent)
    assert delivered["headers"]["bus.call_id"] == placed["call_id"]
    call_delivery = span_id_of(delivered["headers"]["traceparent"])
    result = {"call_id": placed["call_id"], "status": "ok", "result": "found"}
    # The tool agent answers in the trace of the call it got, as AgentRuntime does.
    await traced(admin, f"{b}{conv}/tool-results", result, delivered["headers"]["traceparent"])
    answer = await pull_one(admin, a, planner)
    assert answer["headers"]["bus.kind"] == "tool_result"
    result_delivery = span_id_of(answer["headers"]["traceparent"])

    spans = spans_of(own_fleet, TRACE_ID)
    place_path = "/v1/conversations/{namespace}/{tenant}/{id}/tool-calls"
    # worker A: the planner's request, and its hand-over to the owner
    on_a = one(spans, name=f"POST {place_path}", worker=a)
    assert (on_a["kind"], on_a["parent_id"]) == ("SERVER", PLANNER_SPAN)
    forward = one(spans, kind="CLIENT", parent_id=on_a["span_id"], worker=a)
    assert forward["attributes"]["url.full"] == f"{b}{conv}/tool-calls"
    # worker B: the owner's span is the forward's child; it produced the call's records
    on_b = one(spans, name=f"POST {place_path}", worker=b)
    assert on_b["parent_id"] == forward["span_id"]
    # the tool agent's delivery: a child of the owner's produce, whose context the agent got
    deliver = one(spans, name="deliver", span_id=call_delivery)
    produce = one(spans, span_id=deliver["parent_id"])
    assert (deliver["kind"], produce["kind"]) == ("CONSUMER", "PRODUCER")
    assert produce["parent_id"] == on_b["span_id"]
    assert produce["attributes"]["agentbus.transaction.partition"] >= 0
    # the result: its request continues from the delivery, its records from that request,
    # and the planner's delivery of the result from those records
    settle = one(spans, name="POST /v1/conversations/{namespace}/{tenant}/{id}/tool-results")
    assert (settle["worker"], settle["parent_id"]) == (b, call_delivery)
    back = one(spans, name="deliver", span_id=result_delivery)
    result_produce = one(spans, span_id=back["parent_id"])
    assert (result_produce["kind"], result_produce["parent_id"]) == ("PRODUCER", settle["span_id"])
    assert {s["worker"] for s in spans} == {a, b}
