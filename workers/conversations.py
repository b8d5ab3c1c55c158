"""Applies the conversations log to its view, in order.

Records may be applied twice after a crash, so every change is idempotent: sequence
numbers come from the records, and counts only move forward.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import faust
from agentbus_client.models.conversations import Message
from agentbus_client.models.streams import StreamEnd
from agentbus_client.models.tools import ToolResult, Usage

from bus.approvals import service as approval_ops
from bus.approvals.models import ApprovalRecord, ApprovalView
from bus.conversations.models import (
    INDEX_EVERY,
    RECENT_IDS,
    CallLocation,
    ConversationRecord,
    ConversationView,
    ToolCallView,
    call_view_key,
    index_key,
    message_id_key,
    message_id_slot_key,
)
from bus.conversations.service import forget
from bus.kafka.context import BusContext
from bus.kafka.faust_app import app
from bus.kafka.transactions import TRANSACTIONS
from bus.state.keyed import KeyedState, on_revoked, run_processor
from bus.streams import service as streams
from bus.streams.models import StreamView, stream_view_key
from bus.tools import service as tools
from bus.tools.models import FINAL_STATUS
from tables.conversations import approvals, conversations, locator

__all__ = ["forget_entries", "note_entries", "time_out_calls", "with_message"]

app.on_partitions_revoked.connect(on_revoked([conversations]))


app.on_partitions_revoked.connect(on_revoked([locator, approvals]))


@app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
async def forget_sequences(sender: Any, revoked: set[Any], **_: Any) -> None:
    lost = {tp.partition for tp in revoked}
    forget(lost)
    tools.forget(lost)
    streams.forget(lost)
    approval_ops.forget(lost)
    await TRANSACTIONS.forget(lost)


@app.agent(approvals.topic)  # type: ignore[untyped-decorator]
async def apply_approval_records(stream: faust.StreamT[bytes]) -> None:
    await run_processor(approvals, stream, apply_approval)


def apply_approval(state: KeyedState, key: str, value: bytes, headers: dict[str, str], offset: int) -> None:
    record = ApprovalRecord.model_validate_json(value)
    found = state.get(key, ApprovalView)
    if record.kind == "requested" and record.approval is not None and found is None:
        state.put(key, record.approval)
        approval_ops.changed(key, record.approval)
    elif (
        record.kind == "decided"
        and found is not None
        and found.state == "pending"
        and record.state is not None
    ):
        decided = found.model_copy(
            update={
                "state": record.state,
                "decided_by": record.by,
                "decided_at": record.at,
                "reason": record.reason,
                "published_seq": record.published_seq,
            }
        )
        state.put(key, decided)
        approval_ops.changed(key, decided)


@app.agent(locator.topic)  # type: ignore[untyped-decorator]
async def apply_call_locations(stream: faust.StreamT[bytes]) -> None:
    await run_processor(locator, stream, locate)


def locate(state: KeyedState, key: str, value: bytes, headers: dict[str, str], offset: int) -> None:
    state.put(key, CallLocation.model_validate_json(value))


async def time_out_calls(ctx: BusContext) -> None:
    """Every 0.5 s (a timer of bus.assembly): expire calls and approvals, sweep idle streams."""
    if ctx.ready():
        await tools.expire_due(ctx)
        await approval_ops.expire_due(ctx)
        streams.sweep()


@app.agent(conversations.topic)  # type: ignore[untyped-decorator]
async def apply_conversation_records(stream: faust.StreamT[bytes]) -> None:
    # Nobody waits for a chunk record to be applied: writers answer once Kafka has it.
    await run_processor(conversations, stream, apply, unnoted=frozenset({"stream_chunks"}))


def apply(state: KeyedState, key: str, value: bytes, headers: dict[str, str], offset: int) -> None:
    if headers.get("bus.kind") == "stream_chunks":  # the most frequent record: no need to parse it
        apply_chunks(state, key, headers.get("bus.stream_id", ""), offset)
        return
    record = ConversationRecord.model_validate_json(value)
    view = state.get(key, ConversationView)
    if record.kind == "created" and record.conversation is not None and view is None:
        state.put(key, record.conversation.model_copy(update={"first_offset": offset}))
    elif view is None:
        return  # a record for a deleted conversation
    elif record.kind == "deleted":
        state.remove(key)
        forget_entries(state.table, key, view.next_seq)
    elif record.kind == "transition" and record.state is not None:
        state.put(key, view.model_copy(update={"state": record.state, "last_activity_at": at(record.at)}))
    elif record.kind == "message" and record.message is not None:
        state.put(key, with_message(view, record.message, offset))
        note_entries(state.table, key, record.message, offset)
        if record.message.kind == "stream_end":
            apply_stream_end(state, key, record.message, offset)
        elif record.message.kind != "message":
            apply_to_call(state, key, record.message)


def apply_chunks(state: KeyedState, conv_key: str, stream_id: str, offset: int) -> None:
    """Only a stream's first record changes the view: readers start there."""
    skey = stream_view_key(conv_key, stream_id)
    if state.get(skey, StreamView) is None and state.get(conv_key, ConversationView) is not None:
        state.put(skey, StreamView(conversation=conv_key, stream_id=stream_id, first_offset=offset))


def apply_stream_end(state: KeyedState, conv_key: str, envelope: Message, offset: int) -> None:
    end = StreamEnd.model_validate(envelope.payload)
    skey = stream_view_key(conv_key, end.stream_id)
    found = state.get(skey, StreamView) or StreamView(
        conversation=conv_key, stream_id=end.stream_id, first_offset=offset
    )
    if found.end is not None:
        return  # applied before
    state.put(skey, found.model_copy(update={"end": end}))
    add_usage(state, conv_key, end.usage)


def add_usage(state: KeyedState, conv_key: str, usage: Usage | None) -> None:
    if usage is None:
        return
    view = state.get(conv_key, ConversationView)
    if view is not None:
        state.put(conv_key, view.model_copy(update={"usage": view.usage.plus(usage)}))


def apply_to_call(state: KeyedState, conv_key: str, envelope: Message) -> None:
    """A tool call, its result or its cancellation: update the call's view (and its parent's
    list of children, and the conversation's usage), then wake whoever waits on the call."""
    ns, tenant, _ = conv_key.split("/")
    if envelope.kind == "tool_call":
        call = ToolCallView.model_validate(envelope.payload).model_copy(update={"seq": envelope.seq})
        vkey = call_view_key(ns, tenant, call.call_id)
        if state.get(vkey, ToolCallView) is None:
            state.put(vkey, call)
            add_child(state, ns, tenant, call)
        tools.changed(vkey, call)
        return
    result = ToolResult.model_validate(envelope.payload)
    vkey = call_view_key(ns, tenant, result.call_id)
    pending = state.get(vkey, ToolCallView)
    if pending is None or pending.status != "pending":
        return  # applied before (a replay after a crash)
    settled = pending.model_copy(update={"status": FINAL_STATUS[result.status], "result": result})
    state.put(vkey, settled)
    add_usage(state, conv_key, result.usage)
    tools.changed(vkey, settled)


def add_child(state: KeyedState, ns: str, tenant: str, call: ToolCallView) -> None:
    if call.parent_call_id is None:
        return
    pkey = call_view_key(ns, tenant, call.parent_call_id)
    parent = state.get(pkey, ToolCallView)
    if parent is not None and call.call_id not in parent.children:
        state.put(pkey, parent.model_copy(update={"children": [*parent.children, call.call_id]}))


def with_message(view: ConversationView, message: Message, offset: int) -> ConversationView:
    """The view after a message: small and the same size every time (see note_entries)."""
    return view.model_copy(
        update={
            "next_seq": max(view.next_seq, message.seq + 1),
            "message_count": max(view.message_count, message.seq),
            "last_activity_at": max(view.last_activity_at, at(message.sent_at)),
            "state": "active" if view.state == "open" else view.state,
        }
    )


def note_entries(entries: MutableMapping[str, bytes], conv_key: str, message: Message, offset: int) -> None:
    """The view's entries for a message beside the conversation's own: its id among the
    last RECENT_IDS (forgetting the one whose slot it takes) and, for every INDEX_EVERY-th,
    its offset. Applying a message twice writes the same entries again."""
    slot = message_id_slot_key(conv_key, message.seq)
    evicted = entries.get(slot)
    if evicted is not None and evicted.decode() != message.message_id:
        entries.pop(message_id_key(conv_key, evicted.decode()), None)
    entries[slot] = message.message_id.encode()
    entries[message_id_key(conv_key, message.message_id)] = str(message.seq).encode()
    if message.seq == 1 or message.seq % INDEX_EVERY == 0:
        entries[index_key(conv_key, message.seq)] = str(offset).encode()


def forget_entries(entries: MutableMapping[str, bytes], conv_key: str, next_seq: int) -> None:
    """A deleted conversation's entries beside its view."""
    for seq in range(max(1, next_seq - RECENT_IDS), next_seq):
        evicted = entries.pop(message_id_slot_key(conv_key, seq), None)
        if evicted is not None:
            entries.pop(message_id_key(conv_key, evicted.decode()), None)
    for seq in [1, *range(INDEX_EVERY, next_seq, INDEX_EVERY)]:
        entries.pop(index_key(conv_key, seq), None)


def at(unix_ms: int) -> datetime:
    return datetime.fromtimestamp(unix_ms / 1000, UTC)
