"""Applies the conversations log to its view, in order.

Records may be applied twice after a crash, so every change is idempotent: sequence
numbers come from the records, and counts only move forward.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import faust

from bus.conversations import forget
from bus.faust_app import app
from bus.keyed import KeyedState, on_revoked, run_processor
from bus.models.conversations import RECENT_IDS, ConversationRecord, ConversationView, Message
from tables.conversations import conversations

INDEX_EVERY = 64  # sequence numbers between two index entries

app.on_partitions_revoked.connect(on_revoked([conversations]))


@app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
async def forget_sequences(sender: Any, revoked: set[Any], **_: Any) -> None:
    forget({tp.partition for tp in revoked})


@app.agent(conversations.topic)  # type: ignore[untyped-decorator]
async def apply_conversation_records(stream: faust.StreamT[bytes]) -> None:
    await run_processor(conversations, stream, apply)


def apply(state: KeyedState, key: str, value: bytes, headers: dict[str, str], offset: int) -> None:
    record = ConversationRecord.model_validate_json(value)
    view = state.get(key, ConversationView)
    if record.kind == "created" and record.conversation is not None and view is None:
        state.put(key, record.conversation.model_copy(update={"first_offset": offset}))
    elif view is None:
        return  # a record for a deleted conversation
    elif record.kind == "deleted":
        state.remove(key)
    elif record.kind == "transition" and record.state is not None:
        state.put(key, view.model_copy(update={"state": record.state, "last_activity_at": at(record.at)}))
    elif record.kind == "message" and record.message is not None:
        state.put(key, with_message(view, record.message, offset))


def with_message(view: ConversationView, message: Message, offset: int) -> ConversationView:
    index = dict(view.index)
    if message.seq == 1 or message.seq % INDEX_EVERY == 0:
        index[message.seq] = offset
    recent = dict(view.recent_ids)  # in sequence order, so the oldest comes first
    recent[message.message_id] = message.seq
    while len(recent) > RECENT_IDS:
        del recent[next(iter(recent))]
    return view.model_copy(
        update={
            "next_seq": max(view.next_seq, message.seq + 1),
            "message_count": max(view.message_count, message.seq),
            "last_activity_at": max(view.last_activity_at, at(message.sent_at)),
            "state": "active" if view.state == "open" else view.state,
            "index": index,
            "recent_ids": recent,
        }
    )


def at(unix_ms: int) -> datetime:
    return datetime.fromtimestamp(unix_ms / 1000, UTC)
