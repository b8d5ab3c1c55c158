"""Tool calls and their results: envelopes on a conversation, and the call's state."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, JsonValue, model_validator

from agentbus_client.models.common import Name, StrictModel

CallId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
ToolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]
CallStatus = Literal["awaiting_approval", "pending", "done", "failed", "timed_out", "cancelled", "rejected"]
ResultStatus = Literal["ok", "error", "timed_out", "cancelled", "rejected"]


class Usage(StrictModel):
    """What a call or a stream cost; the bus adds it up per conversation and per agent."""

    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cost: float = Field(0.0, ge=0)
    model: str = Field("", max_length=128)


class UsageTotals(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    reports: int = Field(0, description="How many results and stream ends reported usage")

    def plus(self, usage: Usage) -> UsageTotals:
        return UsageTotals(
            input_tokens=self.input_tokens + usage.input_tokens,
            output_tokens=self.output_tokens + usage.output_tokens,
            cost=round(self.cost + usage.cost, 10),
            reports=self.reports + 1,
        )


class ToolCallSpec(StrictModel):
    """The body of POST /v1/conversations/{...}/tool-calls."""

    call_id: CallId | None = Field(None, description="Unique in the tenant; default: a new random id")
    tool: ToolName
    arguments: JsonValue = Field(default_factory=dict)
    caller: Name = Field(description="The calling agent")
    callee: Name = Field(description="The agent that runs the tool (same tenant)")
    correlation_id: Annotated[str, Field(max_length=128)] | None = None
    reply_to: Name | None = Field(None, description="The agent whose inbox gets the result; default: caller")
    timeout_ms: int = Field(
        60_000, ge=100, le=86_400_000, description="The call times out this long after now"
    )
    parent_call_id: CallId | None = Field(None, description="A call of this conversation this one serves")
    approval_ttl_ms: int = Field(
        3_600_000,
        ge=1_000,
        le=30 * 86_400_000,
        description="A tool that needs approval: undecided by then, rejected",
    )


class ToolError(StrictModel):
    code: Annotated[str, Field(min_length=1, max_length=128)]
    message: str = Field("", max_length=4096)


class ToolResultSpec(StrictModel):
    """The body of POST /v1/conversations/{...}/tool-results."""

    call_id: CallId
    sender: Name | None = Field(
        None, description="The agent posting the result: must be the call's callee; default: the callee"
    )
    status: Literal["ok", "error"]
    result: JsonValue = None
    error: ToolError | None = None
    usage: Usage | None = None

    @model_validator(mode="after")
    def error_when_failed(self) -> ToolResultSpec:
        if (self.status == "error") != (self.error is not None):
            raise ValueError("an error result needs error; an ok result has none")
        return self


class ToolResult(BaseModel):
    call_id: str
    status: ResultStatus
    result: JsonValue = None
    error: ToolError | None = None
    usage: Usage | None = None
    by: Literal["agent", "bus"] = Field("agent", description="bus: a timeout or a cancellation")
    at: int


class ToolCall(BaseModel):
    """A tool call as the bus keeps it (and returns it)."""

    namespace: str
    tenant: str
    conversation: str
    call_id: str
    tool: str
    arguments: JsonValue
    caller: str
    callee: str
    correlation_id: str | None = None
    reply_to: str
    deadline: int = Field(description="Unix ms: a call still pending then times out")
    parent_call_id: str | None = None
    children: list[str] = Field(default_factory=list)
    status: CallStatus = "pending"
    result: ToolResult | None = None
    created_at: int
    seq: int = Field(0, description="The call's sequence number in its conversation")
    approval_id: str | None = Field(
        None, description="Set when the call waits (or waited) for a human decision"
    )
    approval_digest: str | None = Field(None, description="What an approver must quote (sha256 of the call)")


class CancelRequest(StrictModel):
    reason: str = Field("", max_length=1024)


class CancelResult(BaseModel):
    cancelled: list[str] = Field(description="The call and every pending call below it")


class CallLocation(BaseModel):
    """Which conversation a call belongs to (GET /v1/tool-calls/.../location)."""

    conversation: str
    approval_id: str | None = Field(
        None, description="Set while the call is parked for approval (it is in no conversation then)"
    )
