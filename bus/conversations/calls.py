"""The records a tool call writes: its envelope in the conversation log, and the copies
that agents' inboxes get (the call to the callee, the result to reply_to, a cancel).
Tool calls write them when placed, approvals when they release a parked call."""

from __future__ import annotations

from agentbus_client.models.tools import ToolCall

from bus import headers as h
from bus.clock import now_ms
from bus.conversations.models import ToolCallView
from bus.conversations.service import Envelope
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord
from bus.subscriptions.dispatcher_pool import inbox_kafka_topic

__all__ = ["call_envelope", "call_headers", "inbox_copy"]


def call_envelope(call: ToolCallView) -> Envelope:
    return Envelope(
        "tool_call",
        call.caller,
        call.model_dump(mode="json"),
        message_id=f"call-{call.call_id}",
        headers=call_headers(call),
    )


def call_headers(call: ToolCall) -> dict[str, str]:
    stamped = {h.CALL_ID: call.call_id}
    if call.correlation_id is not None:
        stamped[h.CORRELATION_ID] = call.correlation_id
    return stamped


def inbox_copy(
    ctx: BusContext, call: ToolCall, kind: str, value: str, to: str | None = None
) -> OutgoingRecord:
    """The record an agent's inbox gets: the call (callee), the result (reply_to), a cancel (callee)."""
    agent = to or call.callee
    key = f"{call.namespace}/{call.tenant}/{agent}"
    stamped = {
        **call_headers(call),
        h.KIND: kind,
        h.MESSAGE_ID: f"{kind}-{call.call_id}",
        h.NAMESPACE: call.namespace,
        h.TENANT: call.tenant,
        h.PUBLISHED_AT: str(now_ms()),
        h.CONTENT_TYPE: "application/json",
        h.CONVERSATION: call.conversation,
        h.FROM: f"{call.namespace}/{call.tenant}/{call.caller}",
        h.TO: key,
        h.REPLY_TO: f"{call.namespace}/{call.tenant}/{call.reply_to}",
    }
    return OutgoingRecord(inbox_kafka_topic(ctx.settings), value.encode(), key.encode(), h.to_kafka(stamped))
