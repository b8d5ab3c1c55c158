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
    "INDEX_EVERY",
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
    "index_key",
    "message_id_key",
    "message_id_slot_key",
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
RECENT_IDS = 1000  # message ids per conversation a repeated append is recognised by
INDEX_EVERY = 64  # sequence numbers between two index entries


class ConversationView(Conversation):
    """What the owner keeps: the conversation plus where its messages start in Kafka.

    The view is rewritten with every message, so what grows with the conversation lives
    in entries of its own beside it (written once each): index_key (where every
    INDEX_EVERY-th message is, so a replay seeks near its start) and message_id_key (the
    last RECENT_IDS message ids, so a retried append gets the first one back). index and
    recent_ids are where views written before kept them, read still, never extended."""

    next_seq: int = 1
    first_offset: int = 0
    index: dict[int, int] = Field(default_factory=dict)
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


def index_key(conv_key: str, seq: int) -> str:
    """The view entry holding the offset of message seq (1 and every INDEX_EVERY-th)."""
    return f"idx:{conv_key}\x00{seq}"


def message_id_key(conv_key: str, message_id: str) -> str:
    """The view entry holding the sequence number of a recent message id."""
    return f"mid:{conv_key}\x00{message_id}"


def message_id_slot_key(conv_key: str, seq: int) -> str:
    """The view entry naming the message id that holds slot seq % RECENT_IDS: the one to
    forget when a message RECENT_IDS later takes the slot."""
    return f"mslot:{conv_key}\x00{seq % RECENT_IDS}"


def call_view_key(namespace: str, tenant: str, call_id: str) -> str:
    """Key of a call in the conversations view (never a conversation key: those have no ':')."""
    return f"call:{namespace}/{tenant}/{call_id}"
