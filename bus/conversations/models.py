"""Conversations: threads of messages between agents, one ordered log each."""

from __future__ import annotations

from typing import Literal

from agentbus_client.models.conversations import (
    Conversation,
    ConversationList,
    ConversationSpec,
    ConversationState,
    EnvelopeKind,
    Message,
    MessagePage,
    MessageSpec,
    TransitionRequest,
    conversation_key,
)
from agentbus_client.models.streams import Chunk
from agentbus_client.models.tools import ToolCall
from pydantic import BaseModel, Field, JsonValue

__all__ = [
    "ACCEPTS_MESSAGES",
    "RECENT_IDS",
    "TRANSITIONS",
    "CallLocation",
    "ChunkRecord",
    "Conversation",
    "ConversationList",
    "ConversationRecord",
    "ConversationSpec",
    "ConversationView",
    "EnvelopeKind",
    "Message",
    "MessagePage",
    "MessageSpec",
    "ToolCallView",
    "TransitionRequest",
    "call_view_key",
    "conversation_key",
]


# Which states each state may move to by POST .../transition. open -> active also happens
# by itself on the first message.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("active", "paused", "closed"),
    "active": ("paused", "closed"),
    "paused": ("active", "closed"),
    "closed": ("archived",),
    "archived": (),
}
ACCEPTS_MESSAGES = ("open", "active")
RECENT_IDS = 1000


class ConversationView(Conversation):
    """What the owner keeps: the conversation plus where its messages are in Kafka.

    index maps some sequence numbers (the first, then every INDEX_EVERY-th) to their
    offset, so a replay seeks near its start instead of reading the log from the top."""

    next_seq: int = 1
    first_offset: int = 0
    index: dict[int, int] = Field(default_factory=dict)
    # The last RECENT_IDS caller-given message ids and their sequence numbers: a retried
    # append with the same message_id gets the first one back instead of a second message.
    recent_ids: dict[str, int] = Field(default_factory=dict)

    def public(self) -> Conversation:
        internal = {"next_seq", "first_offset", "index", "recent_ids"}
        return Conversation.model_validate(self.model_dump(exclude=internal))


class ConversationRecord(BaseModel):
    """A record on the conversations log (keyed by conversation): every change, in order."""

    kind: Literal["created", "transition", "message", "chunks", "deleted"]
    conversation: ConversationView | None = None  # created
    state: ConversationState | None = None  # transition: the new state
    reason: str = ""
    message: Message | None = None
    chunks: ChunkRecord | None = None  # chunks of a token stream (no sequence number of their own)
    at: int  # unix ms


# -- what tool calls and streams keep on the conversation's log and views --------------------


class ChunkRecord(BaseModel):
    """Chunks written together as one Kafka record (coalesced when they came close together)."""

    stream_id: str
    chunks: list[Chunk]
    at: int


class ToolCallView(ToolCall):
    """What the conversation's owner keeps: the call plus the schema its result must match."""

    output_schema: dict[str, JsonValue] | None = None
    timeout_ms: int = 60_000  # the deadline restarts from the approval, if the call needed one

    def public(self) -> ToolCall:
        return ToolCall.model_validate(self.model_dump(exclude={"output_schema", "timeout_ms"}))


class CallLocation(BaseModel):
    """Which conversation a call belongs to (the call-locator view, keyed by call)."""

    conversation: str
    approval_id: str | None = Field(
        None, description="Set while the call is parked for approval (it is in no conversation then)"
    )


def call_view_key(namespace: str, tenant: str, call_id: str) -> str:
    """Key of a call in the conversations view (never a conversation key: those have no ':')."""
    return f"call:{namespace}/{tenant}/{call_id}"
