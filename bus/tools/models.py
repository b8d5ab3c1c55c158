"""Tool calls and their results: envelopes on a conversation, and the call's state."""

from __future__ import annotations

from agentbus_client.models.tools import (
    CallStatus,
    CancelRequest,
    CancelResult,
    ToolCall,
    ToolCallSpec,
    ToolError,
    ToolResult,
    ToolResultSpec,
    Usage,
    UsageTotals,
)
from pydantic import BaseModel, Field, JsonValue

__all__ = [
    "FINAL_STATUS",
    "CallLocation",
    "CancelRequest",
    "CancelResult",
    "ToolCall",
    "ToolCallSpec",
    "ToolCallView",
    "ToolError",
    "ToolResult",
    "ToolResultSpec",
    "Usage",
    "UsageTotals",
    "call_view_key",
]

FINAL_STATUS: dict[str, CallStatus] = {
    "ok": "done",
    "error": "failed",
    "timed_out": "timed_out",
    "cancelled": "cancelled",
    "rejected": "failed",
}


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
