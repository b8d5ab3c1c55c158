"""Conversations: threads of messages between agents, one ordered log each."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, JsonValue

from agentbus_client.models.common import Labels, Name, StrictModel
from agentbus_client.models.tools import UsageTotals

ConversationState = Literal["open", "active", "paused", "closed", "archived"]

Metadata = Annotated[dict[Annotated[str, Field(max_length=128)], JsonValue], Field(max_length=64)]


class ConversationSpec(StrictModel):
    """The body of POST /v1/conversations."""

    namespace: Name
    tenant: Name
    id: Name | None = Field(None, description="Default: a new random id")
    participants: list[Name] = Field(
        default_factory=list, max_length=256, description="Agent ids; empty: open to the tenant"
    )
    title: str = Field("", max_length=256)
    metadata: Metadata = Field(default_factory=dict)
    labels: Labels = Field(default_factory=dict)


class Conversation(BaseModel):
    """A conversation as the bus returns it."""

    namespace: str
    tenant: str
    id: str
    participants: list[str]
    title: str = ""
    state: ConversationState
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    last_activity_at: datetime
    message_count: int = Field(description="Envelopes so far; also the sequence number of the last one")
    usage: UsageTotals = Field(
        default_factory=UsageTotals, description="Reported by tool results and streams"
    )

    @property
    def key(self) -> str:
        return conversation_key(self.namespace, self.tenant, self.id)


class ConversationList(BaseModel):
    conversations: list[Conversation]


class TransitionRequest(StrictModel):
    to: ConversationState
    reason: str = Field("", max_length=1024)


class MessageSpec(StrictModel):
    """The body of POST .../messages."""

    sender: Name = Field(
        description="The sending agent; must be a participant when the conversation names any"
    )
    payload: JsonValue
    content_type: str = Field("application/json", max_length=128)
    metadata: Metadata = Field(default_factory=dict)
    message_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="Makes retries safe: an append with a recent message_id returns the first one (200)"
    )


EnvelopeKind = Literal["message", "tool_call", "tool_result", "tool_cancel", "stream_end"]


class Message(BaseModel):
    """One envelope of a conversation (a message, a tool call, its result...), as appended and replayed."""

    conversation: str
    seq: int = Field(description="1, 2, 3, ... per conversation, without gaps")
    kind: EnvelopeKind = "message"
    message_id: str
    sender: str
    payload: JsonValue
    content_type: str
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    sent_at: int = Field(description="Unix ms when the bus appended it")


class MessagePage(BaseModel):
    messages: list[Message]
    next_from_seq: int | None = Field(description="Pass as from_seq for the next page; null at the end")


def conversation_key(namespace: str, tenant: str, conversation_id: str) -> str:
    return f"{namespace}/{tenant}/{conversation_id}"


class ConversationStateChange(BaseModel):
    """A `state` event of GET .../stream: the conversation moved to this state."""

    state: ConversationState
    at: int = Field(description="Unix ms")


class ConversationDeleted(BaseModel):
    """The `deleted` event of GET .../stream: the conversation is gone and the stream ends."""

    at: int = Field(description="Unix ms")
