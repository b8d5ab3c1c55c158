"""Tool calls, a streamed reply and an approval gate, on one conversation.

A planner asks a calculator agent to run its `add` tool; the calculator (an
agentbus_client.AgentRuntime serving its inbox) posts the result; the planner streams its
reply token by token (the client's stream writer, over a WebSocket) while a reader
follows the stream; then the planner calls `transfer`, a tool that requires approval. The
call is parked until a human approves it: this prints the one curl that does it and
waits (after --wait seconds with no decision it approves by itself, so the demo always
ends).
Everything goes through real Kafka and both workers.

    python examples/tools_streams_approval.py [--a URL] [--b URL] [--wait SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path

from agentbus_client import AgentExists, AgentRuntime, AsyncClient, ToolInvocation, models
from pydantic import JsonValue

NAMESPACE, TENANT = "demo", "acme"
REPO = Path(__file__).resolve().parent.parent


def api_key() -> str:
    key = os.environ.get("AGENTBUS_KEY")
    if not key:
        path = REPO / ".data" / "admin-key"
        key = path.read_text().strip() if path.exists() else ""
    return key


def calculator(bus: AsyncClient) -> AgentRuntime:
    """The callee: an agent runtime serving two tools from its inbox."""
    runtime = AgentRuntime(bus.with_scope(agent_id="calculator"))

    @runtime.tool(
        "add",
        input_schema={
            "type": "object",
            "properties": {"numbers": {"type": "array"}},
            "required": ["numbers"],
        },
        output_schema={"type": "number"},
    )
    async def add(call: ToolInvocation) -> JsonValue:
        print(f"   (calculator runs add for call {call.call.call_id[:8]})")
        numbers: list[int] = call.arguments["numbers"]
        return sum(numbers)

    @runtime.tool(
        "transfer",
        requires_approval=True,
        input_schema={"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]},
    )
    async def transfer(call: ToolInvocation) -> JsonValue:
        print(f"   (calculator runs transfer for call {call.call.call_id[:8]})")
        return {"sent": call.arguments["amount"]}

    return runtime


async def follow_stream(bus: AsyncClient, conv_id: str, stream_id: str) -> str:
    """A reader of the planner's streamed reply: chunks in order until the end."""
    text = []
    async for event in bus.streams.read(conv_id, stream_id):
        if isinstance(event, models.StreamChunk) and isinstance(event.data, str):
            text.append(event.data)
    return "".join(text)


async def run(a: str, b: str, wait_s: float) -> None:
    async with (
        AsyncClient(a, api_key(), namespace=NAMESPACE, tenant=TENANT, agent_id="planner") as planner,
        AsyncClient(b, api_key(), namespace=NAMESPACE, tenant=TENANT) as other,
    ):
        try:
            await planner.agents.register()
        except AgentExists:
            pass  # registered otherwise by an earlier run
        conv_id = f"demo-{uuid.uuid4().hex[:8]}"
        await planner.conversations.create(conv_id, participants=["planner", "calculator"])
        async with calculator(other):
            print("1. planner calls calculator.add(2, 3, 5)")
            done = await planner.tool_calls.call(
                conv_id, "calculator", "add", {"numbers": [2, 3, 5]}, wait_s=20
            )
            assert done.result is not None
            print(f"   -> {done.status}: {done.result.result}")

            print("2. planner streams its reply; a reader follows it through the other worker")
            stream_id = uuid.uuid4().hex[:8]
            # A message naming the stream first: the web console follows streams it is told about
            # and types them in live (it also replays any stream once its end arrives).
            await planner.conversations.append(conv_id, "reply follows", metadata={"stream_id": stream_id})
            reader = asyncio.create_task(follow_stream(other, conv_id, stream_id))
            await asyncio.sleep(0.3)
            tokens = ["The ", "sum ", "is ", str(done.result.result), "."]
            # The client's writer, over one WebSocket: each token goes out as it comes, and
            # the end goes when the block ends.
            async with planner.streams.writer(conv_id, stream_id) as reply:
                for token in tokens:
                    await reply.write(token)
                reply.usage = models.Usage(output_tokens=len(tokens))
            print(f"   reader got: {await reader!r}")

            print("3. planner calls calculator.transfer(amount=100): the tool requires approval")
            parked = await planner.tool_calls.place(conv_id, "calculator", "transfer", {"amount": 100})
            assert parked.approval_id is not None and parked.approval_digest is not None
            approve = f"{a}/v1/approvals/{NAMESPACE}/{TENANT}/{parked.approval_id}/approve"
            print(f"   parked as {parked.approval_id}; approve it with:\n")
            print(f'   curl -X POST {approve} -H "Authorization: Bearer $(cat .data/admin-key)" \\')
            body = f'{{"digest": "{parked.approval_digest}"}}'
            print(f"        -H 'Content-Type: application/json' -d '{body}'\n")
            print(f"   or in the web console: {a}/ui/#/approvals (sign in with .data/admin-key)\n")
            deadline = time.monotonic() + wait_s
            while (
                await other.approvals.get(parked.approval_id)
            ).state == "pending" and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            if (await other.approvals.get(parked.approval_id)).state == "pending":
                print(f"   nobody decided within {wait_s:.0f} s: approving it now")
                await planner.approvals.approve(parked.approval_id, parked.approval_digest, reason="demo")
            decided = await other.approvals.get(parked.approval_id)
            print(f"   {decided.state} by {decided.decided_by}")
            if decided.state == "approved":
                result = await other.tool_calls.wait(parked.call_id, 20)
                print(f"   -> {result.status}: {result.result.result if result.result else None}")
        thread = await other.conversations.messages(conv_id)
        kinds = [f"{m.seq}:{m.kind}" for m in thread.messages]
        print(f"4. the conversation, replayed from Kafka: {' '.join(kinds)}")
        print(f"   usage reported on it: {(await planner.conversations.get(conv_id)).usage}")


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
