"""Tool calls, a streamed reply and an approval gate, on one conversation.

A planner asks a calculator agent to run its `add` tool; the calculator (a small loop on
its inbox) posts the result; the planner streams its reply token by token (the SDK's
stream writer, over a WebSocket) while a reader follows the stream; then the planner
calls `transfer`, a tool that requires approval. The call is parked until a human
approves it: this prints the one curl that does it and waits (after --wait seconds with
no decision it approves by itself, so the demo always ends).
Everything goes through real Kafka and both workers.

    python examples/tools_streams_approval.py [--a URL] [--b URL] [--wait SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bus.sdk.client import BusClient
from bus.tools.models import Usage

NAMESPACE, TENANT = "demo", "acme"
REPO = Path(__file__).resolve().parent.parent
ADD = {
    "name": "add",
    "input_schema": {"type": "object", "properties": {"numbers": {"type": "array"}}, "required": ["numbers"]},
    "output_schema": {"type": "number"},
}
TRANSFER = {
    "name": "transfer",
    "input_schema": {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]},
    "requires_approval": True,
}


def api_key() -> str:
    key = os.environ.get("AGENTBUS_KEY")
    if not key:
        path = REPO / ".data" / "admin-key"
        key = path.read_text().strip() if path.exists() else ""
    return key


async def send(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as r:
        answer = await r.json(content_type=None)
        if r.status >= 400:
            raise SystemExit(f"{method} {url} -> {r.status} {answer}")
        return answer


async def register(http: aiohttp.ClientSession, url: str, agent_id: str, tools: list[dict[str, Any]]) -> None:
    body = {"namespace": NAMESPACE, "tenant": TENANT, "id": agent_id, "capabilities": tools}
    async with http.post(f"{url}/v1/agents", json=body) as r:
        if r.status not in (200, 201, 409):  # 200 or 409: registered by an earlier run
            raise SystemExit(f"registering {agent_id}: {r.status} {await r.text()}")


async def calculator(
    http: aiohttp.ClientSession, url: str, agent: str, conv: str, stop: asyncio.Event
) -> None:
    """The callee: takes tool calls from its inbox, posts results, acks."""
    inbox = f"{url}/v1/agents/{NAMESPACE}/{TENANT}/{agent}/inbox"
    while not stop.is_set():
        pulled = await send(http, "POST", f"{inbox}/pull", {"max_records": 10, "wait_ms": 500})
        for d in pulled["deliveries"]:
            if d["headers"].get("bus.kind") == "tool_call":
                call = d["payload"]
                if call["tool"] == "add":
                    result = {
                        "call_id": call["call_id"],
                        "status": "ok",
                        "result": sum(call["arguments"]["numbers"]),
                    }
                else:
                    result = {
                        "call_id": call["call_id"],
                        "status": "ok",
                        "result": {"sent": call["arguments"]["amount"]},
                    }
                print(f"   (calculator runs {call['tool']} for call {call['call_id'][:8]})")
                await send(http, "POST", f"{url}{conv}/tool-results", result)
        if pulled["deliveries"]:
            await send(
                http,
                "POST",
                f"{inbox}/ack",
                {"delivery_ids": [d["delivery_id"] for d in pulled["deliveries"]]},
            )


async def follow_stream(http: aiohttp.ClientSession, url: str) -> str:
    """A reader of the planner's streamed reply: chunks in order until the end."""
    text = []
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=60)) as r:
        event = None
        async for raw in r.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "chunk":
                text.append(json.loads(line[6:])["data"])
            elif line.startswith("data: ") and event == "end":
                return "".join(text)
    return "".join(text)


async def run(a: str, b: str, wait_s: float) -> None:
    headers = {"Authorization": f"Bearer {api_key()}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as http:
        await register(http, a, "planner", [])
        await register(http, b, "calculator", [ADD, TRANSFER])
        conv_id = f"demo-{uuid.uuid4().hex[:8]}"
        conv = f"/v1/conversations/{NAMESPACE}/{TENANT}/{conv_id}"
        body = {
            "namespace": NAMESPACE,
            "tenant": TENANT,
            "id": conv_id,
            "participants": ["planner", "calculator"],
        }
        await send(http, "POST", f"{a}/v1/conversations", body)
        stop = asyncio.Event()
        worker = asyncio.create_task(calculator(http, b, "calculator", conv, stop))

        print("1. planner calls calculator.add(2, 3, 5)")
        spec = {
            "tool": "add",
            "arguments": {"numbers": [2, 3, 5]},
            "caller": "planner",
            "callee": "calculator",
        }
        placed = await send(http, "POST", f"{a}{conv}/tool-calls", spec)
        done = await send(
            http, "GET", f"{b}/v1/tool-calls/{NAMESPACE}/{TENANT}/{placed['call_id']}?wait_ms=20000"
        )
        print(f"   -> {done['status']}: {done['result']['result']}")

        print("2. planner streams its reply; a reader follows it through the other worker")
        stream_id = uuid.uuid4().hex[:8]
        # A message naming the stream first: the web console follows streams it is told about
        # and types them in live (it also replays any stream once its end arrives).
        announce = {"sender": "planner", "payload": "reply follows", "metadata": {"stream_id": stream_id}}
        await send(http, "POST", f"{a}{conv}/messages", announce)
        reader = asyncio.create_task(
            follow_stream(http, f"{b}/v1/streams/{NAMESPACE}/{TENANT}/{conv_id}/{stream_id}")
        )
        await asyncio.sleep(0.3)
        tokens = ["The ", "sum ", "is ", str(done["result"]["result"]), "."]
        # The SDK's writer, over one WebSocket: each token goes as it comes, batched while
        # the bus acknowledges the previous frame; the end goes when the block ends.
        async with BusClient(a, api_key(), namespace=NAMESPACE, tenant=TENANT, agent_id="planner") as bus:
            async with bus.stream(conv_id, stream_id, transport="ws") as reply:
                for token in tokens:
                    await reply.write(token)
                reply.usage = Usage(output_tokens=len(tokens))
        print(f"   reader got: {await reader!r}")

        print("3. planner calls calculator.transfer(amount=100): the tool requires approval")
        spec = {"tool": "transfer", "arguments": {"amount": 100}, "caller": "planner", "callee": "calculator"}
        parked = await send(http, "POST", f"{a}{conv}/tool-calls", spec)
        approve = f"{a}/v1/approvals/{NAMESPACE}/{TENANT}/{parked['approval_id']}/approve"
        print(f"   parked as {parked['approval_id']}; approve it with:\n")
        digest = json.dumps({"digest": parked["approval_digest"]})
        print(f'   curl -X POST {approve} -H "Authorization: Bearer $(cat .data/admin-key)" \\')
        print(f"        -H 'Content-Type: application/json' -d '{digest}'\n")
        print(f"   or in the web console: {a}/ui/#/approvals (sign in with .data/admin-key)\n")
        approval = f"{b}/v1/approvals/{NAMESPACE}/{TENANT}/{parked['approval_id']}"
        deadline = time.monotonic() + wait_s
        while (await send(http, "GET", approval))["state"] == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        if (await send(http, "GET", approval))["state"] == "pending":
            print(f"   nobody decided within {wait_s:.0f} s: approving it now")
            await send(http, "POST", approve, {"digest": parked["approval_digest"], "reason": "demo"})
        decided = await send(http, "GET", approval)
        print(f"   {decided['state']} by {decided['decided_by']}")
        if decided["state"] == "approved":
            path = f"/v1/tool-calls/{NAMESPACE}/{TENANT}/{parked['call_id']}?wait_ms=20000"
            result = await send(http, "GET", f"{b}{path}")
            print(f"   -> {result['status']}: {result['result']['result']}")
        stop.set()
        await worker
        thread = await send(http, "GET", f"{b}{conv}/messages")
        kinds = [f"{m['seq']}:{m['kind']}" for m in thread["messages"]]
        print(f"4. the conversation, replayed from Kafka: {' '.join(kinds)}")
        usage = (await send(http, "GET", f"{a}{conv}"))["usage"]
        print(f"   usage reported on it: {usage}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", default="http://127.0.0.1:6066", help="worker A")
    parser.add_argument("--b", default="http://127.0.0.1:6067", help="worker B")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a human approval")
    args = parser.parse_args()
    asyncio.run(run(args.a, args.b, args.wait))


if __name__ == "__main__":
    main()
