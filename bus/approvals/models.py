"""Approvals: a tool call parked until a human approves or rejects exactly what it would publish."""

from __future__ import annotations

from typing import Literal

from agentbus_client.models.approvals import Approval, ApprovalList, ApprovalState, Decision
from pydantic import BaseModel, Field

from bus.conversations.models import ToolCallView

__all__ = [
    "Approval",
    "ApprovalList",
    "ApprovalRecord",
    "ApprovalState",
    "ApprovalView",
    "Decision",
    "ParkedRecord",
]


class ParkedRecord(BaseModel):
    """A publish a rule parked: the Kafka record it would write, exactly."""

    topic: str = Field(description="The bus topic (namespace/tenant/name)")
    kafka_topic: str
    partition: int
    key: str | None = None
    value: str = Field(description="The record's value (UTF-8 text)")
    headers: list[tuple[str, str]]


class ApprovalView(Approval):
    parked: ToolCallView | None = None  # a tool call
    record: ParkedRecord | None = None  # a publish

    def public(self) -> Approval:
        return Approval.model_validate(self.model_dump(exclude={"parked", "record"}))


class ApprovalRecord(BaseModel):
    """A record on the approvals log (keyed by approval): parked, then decided once."""

    kind: Literal["requested", "decided"]
    approval: ApprovalView | None = None  # requested
    state: ApprovalState | None = None  # decided
    by: str = ""
    reason: str = ""
    published_seq: int | None = None
    at: int
