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
from pydantic import BaseModel, Field

from bus.streams.models import ChunkRecord

__all__ = [
    "ACCEPTS_MESSAGES",
    "RECENT_IDS",
    "TRANSITIONS",
    "Conversation",
    "ConversationList",
    "ConversationRecord",
    "ConversationSpec",
    "ConversationView",
    "EnvelopeKind",
    "Message",
    "MessagePage",
    "MessageSpec",
    "TransitionRequest",
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
