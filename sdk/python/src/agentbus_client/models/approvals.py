"""Approvals: a tool call parked until a human approves or rejects exactly what it would publish."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agentbus_client.models.common import StrictModel

ApprovalState = Literal["pending", "approved", "rejected", "expired"]


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


class ApprovalList(BaseModel):
    approvals: list[Approval]


class Decision(StrictModel):
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="The digest shown on the approval")
    reason: str = Field("", max_length=1024)
