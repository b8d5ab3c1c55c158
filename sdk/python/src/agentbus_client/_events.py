"""What each event stream of the bus sends, as typed values (pure: no I/O).

A parser returns None for an event it does not know (a newer bus may send more kinds)
and raises the typed error of an `error` event (a subscription deleted while read).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeAlias, TypeVar

from agentbus_client._errors import error_class_for, error_from_answer
from agentbus_client._sse import ServerSentEvent
from agentbus_client.models.conversations import ConversationDeleted, ConversationStateChange, Message
from agentbus_client.models.publish import DeliveredRecord
from agentbus_client.models.streams import StreamChunk, StreamEnd, StreamGap
from agentbus_client.models.subscriptions import Delivery
from agentbus_client.models.system import WatchSnapshot

T = TypeVar("T")
Parser: TypeAlias = Callable[[ServerSentEvent], T | None]
ConversationEvent: TypeAlias = Message | ConversationStateChange | ConversationDeleted
StreamEvent: TypeAlias = StreamChunk | StreamGap | StreamEnd
__all__ = ["ConversationEvent", "StreamEvent"]


def raise_if_error(event: ServerSentEvent) -> None:
    if event.event == "error":
        body = json.loads(event.data)
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        raise error_from_answer(error_class_for(code, 500).status, body)


def topic_record(event: ServerSentEvent) -> DeliveredRecord | None:
    raise_if_error(event)
    return DeliveredRecord.model_validate_json(event.data) if event.event == "record" else None


def delivery(event: ServerSentEvent) -> Delivery | None:
    raise_if_error(event)
    return Delivery.model_validate_json(event.data) if event.event == "delivery" else None


def conversation_event(event: ServerSentEvent) -> ConversationEvent | None:
    raise_if_error(event)
    if event.event == "message":
        return Message.model_validate_json(event.data)
    if event.event == "state":
        return ConversationStateChange.model_validate_json(event.data)
    if event.event == "deleted":
        return ConversationDeleted.model_validate_json(event.data)
    return None


def stream_event(event: ServerSentEvent) -> StreamEvent | None:
    raise_if_error(event)
    if event.event in ("chunk", "late"):
        chunk = StreamChunk.model_validate_json(event.data)
        return chunk.model_copy(update={"late": event.event == "late"})
    if event.event == "gap":
        return StreamGap.model_validate_json(event.data)
    if event.event == "end":
        return StreamEnd.model_validate_json(event.data)
    return None


def watch_snapshot(event: ServerSentEvent) -> WatchSnapshot | None:
    raise_if_error(event)
    return WatchSnapshot.model_validate_json(event.data) if event.event == "snapshot" else None


def never_last(_: object) -> bool:
    return False


def is_conversation_end(event: object) -> bool:
    return isinstance(event, ConversationDeleted)


def is_stream_end(event: object) -> bool:
    return isinstance(event, StreamEnd)


def next_chunk_after(event: object, current: int) -> int:
    """Where a stream read resumes after this event."""
    if isinstance(event, StreamChunk) and not event.late:
        return max(current, event.chunk_seq + 1)
    if isinstance(event, StreamGap):
        return max(current, event.to_chunk_seq + 1)
    return current
