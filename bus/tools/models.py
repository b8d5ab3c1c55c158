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

__all__ = [
    "FINAL_STATUS",
    "CancelRequest",
    "CancelResult",
    "ToolCall",
    "ToolCallSpec",
    "ToolError",
    "ToolResult",
    "ToolResultSpec",
    "Usage",
    "UsageTotals",
]

FINAL_STATUS: dict[str, CallStatus] = {
    "ok": "done",
    "error": "failed",
    "timed_out": "timed_out",
    "cancelled": "cancelled",
    "rejected": "failed",
}
