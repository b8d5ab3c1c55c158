"""Approvals: a tool call parked until a human approves or rejects exactly what it would publish."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from bus.tools.models import ToolCallView
from bus.wire import StrictModel

__all__ = [
    "Approval",
    "ApprovalList",
    "ApprovalRecord",
    "ApprovalState",
    "ApprovalView",
    "Decision",
    "ParkedRecord",
]

ApprovalState = Literal["pending", "approved", "rejected", "expired"]


class ParkedRecord(BaseModel):
    """A publish a rule parked: the Kafka record it would write, exactly."""

    topic: str = Field(description="The bus topic (namespace/tenant/name)")
    kafka_topic: str
    partition: int
    key: str | None = None
    value: str = Field(description="The record's value (UTF-8 text)")
    headers: list[tuple[str, str]]


class Approval(BaseModel):
    namespace: str
    tenant: str
    approval_id: str
    kind: Literal["tool_call", "publish"] = "tool_call"
    conversation: str = ""
    call_id: str = ""
    tool: str = ""
    caller: str = Field("", description="The calling agent, or the key that published")
    callee: str = ""
    topic: str = Field("", description="A parked publish: its topic")
    envelope: dict[str, object] = Field(description="The tool call it would publish, exactly")
    digest: str = Field(description="sha256 of the envelope's canonical JSON: quote it to decide")
    state: ApprovalState = "pending"
    requested_at: int
    expires_at: int = Field(description="Unix ms: still pending then, it expires as rejected")
    decided_by: str | None = None
    decided_at: int | None = None
    reason: str = ""
    published_seq: int | None = Field(
        None, description="Approved: the call's sequence number in the conversation"
    )


class ApprovalView(Approval):
    parked: ToolCallView | None = None  # a tool call
    record: ParkedRecord | None = None  # a publish

    def public(self) -> Approval:
        return Approval.model_validate(self.model_dump(exclude={"parked", "record"}))


class ApprovalList(BaseModel):
    approvals: list[Approval]


class Decision(StrictModel):
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="The digest shown on the approval")
    reason: str = Field("", max_length=1024)


class ApprovalRecord(BaseModel):
    """A record on the approvals log (keyed by approval): parked, then decided once."""

    kind: Literal["requested", "decided"]
    approval: ApprovalView | None = None  # requested
    state: ApprovalState | None = None  # decided
    by: str = ""
    reason: str = ""
    published_seq: int | None = None
    at: int
