# Generated from _async/ by scripts/generate_sync.py: edit the async file, then run it.
"""Tool calls (place, await, post results, cancel) and approvals."""

from __future__ import annotations

import builtins
import time
from typing import Any

from pydantic import JsonValue

from agentbus_client._errors import ToolCallExists, ToolResultExists
from agentbus_client._shared import body_of, dump, keyed_path, new_id, parse, query, tenant_path
from agentbus_client._sync._admin import _Resource
from agentbus_client.models.approvals import Approval, ApprovalList, Decision
from agentbus_client.models.tools import (
    CallLocation,
    CancelRequest,
    CancelResult,
    ToolCall,
    ToolCallSpec,
    ToolError,
    ToolResultSpec,
    Usage,
)

MAX_WAIT_MS = 60_000  # what the bus holds one GET of a call for; longer waits take several
UNSETTLED = ("pending", "awaiting_approval")


class SyncToolCalls(_Resource):
    """Calls of one agent's tool by another, inside a conversation."""

    def place(
        self,
        conversation: str,
        callee: str,
        tool: str,
        arguments: JsonValue = None,
        *,
        caller: str | None = None,
        call_id: str | None = None,
        timeout_ms: int | None = None,
        parent_call_id: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        approval_ttl_ms: int | None = None,
    ) -> ToolCall:
        """Place a call as caller (default: the client's agent); the call as placed.

        It is `pending`, or `awaiting_approval` for a tool that needs a human decision.
        call_id defaults to a fresh id made here, so a placement retried after a lost answer
        is recognised: the bus's tool_call_exists for the same call returns that call."""
        body = body_of(
            ToolCallSpec,
            call_id=call_id or new_id(),
            tool=tool,
            arguments={} if arguments is None else arguments,
            caller=self._scope.me(caller),
            callee=callee,
            timeout_ms=timeout_ms,
            parent_call_id=parent_call_id,
            correlation_id=correlation_id,
            reply_to=reply_to,
            approval_ttl_ms=approval_ttl_ms,
        )
        calls_path = keyed_path("conversations", self._scope, conversation, "tool-calls")
        try:
            return parse(ToolCall, self._http.request("POST", calls_path, json=body))
        except ToolCallExists as refused:
            earlier = self.get(body["call_id"])
            mine = (earlier.tool, earlier.callee, earlier.caller, earlier.arguments)
            if mine != (body["tool"], body["callee"], body["caller"], body["arguments"]):
                raise refused from None
            return earlier

    def call(
        self,
        conversation: str,
        callee: str,
        tool: str,
        arguments: JsonValue = None,
        *,
        wait_s: float = 60.0,
        **options: Any,
    ) -> ToolCall:
        """Place a call and wait up to wait_s for it to settle; the call then (its `result`),
        or as it is when the wait ran out. Options are place()'s."""
        placed = self.place(conversation, callee, tool, arguments, **options)
        if placed.status not in UNSETTLED:
            return placed
        return self.wait(placed.call_id, wait_s)

    def get(self, call_id: str, *, wait_ms: int | None = None) -> ToolCall:
        """The call now, or once settled if that is within wait_ms (at most MAX_WAIT_MS)."""
        timeout = self._http.timeouts.read + (wait_ms or 0) / 1000
        call_path = tenant_path("tool-calls", self._scope, call_id)
        answer = self._http.request("GET", call_path, params=query(wait_ms=wait_ms), timeout=timeout)
        return parse(ToolCall, answer)

    def wait(self, call_id: str, wait_s: float) -> ToolCall:
        """The call once it settled, or as it is after wait_s (any length: several long polls)."""
        deadline = time.monotonic() + wait_s
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            found = self.get(call_id, wait_ms=min(left_ms, MAX_WAIT_MS))
            if found.status not in UNSETTLED or left_ms <= MAX_WAIT_MS:
                return found

    def post_result(
        self,
        conversation: str,
        call_id: str,
        result: JsonValue = None,
        *,
        error: ToolError | dict[str, Any] | None = None,
        usage: Usage | dict[str, Any] | None = None,
        sender: str | None = None,
    ) -> ToolCall:
        """Post the call's result once: ok with result, or error when error is given; the
        settled call. ToolResultExists (or ToolCallCancelled, ToolCallTimedOut) when the call
        was settled otherwise first; a retry of this same result returns the call instead."""
        body = body_of(
            ToolResultSpec,
            call_id=call_id,
            status="ok" if error is None else "error",
            result=result,
            error=error,
            usage=usage,
            sender=sender or self._scope.agent_id,
        )
        results_path = keyed_path("conversations", self._scope, conversation, "tool-results")
        try:
            return parse(ToolCall, self._http.request("POST", results_path, json=body))
        except ToolResultExists as refused:
            won = refused.details.get("result") if isinstance(refused.details, dict) else None
            if not _same_result(body, won):
                raise
            return self.get(call_id)

    def location(self, call_id: str) -> CallLocation:
        """The conversation the call belongs to, and its approval while it is parked for one."""
        answer = self._http.request("GET", tenant_path("tool-calls", self._scope, call_id, "location"))
        return parse(CallLocation, answer)

    def cancel(self, call_id: str, *, reason: str | None = None) -> builtins.list[str]:
        """Cancel a pending call and every pending call below it; the ids cancelled, it first."""
        body = body_of(CancelRequest, reason=reason)
        answer = self._http.request(
            "POST", tenant_path("tool-calls", self._scope, call_id, "cancel"), json=body
        )
        return parse(CancelResult, answer).cancelled


def _same_result(sent: dict[str, Any], won: Any) -> bool:
    """Whether the result that settled a call is the one we sent (a retry of ours)."""
    if not isinstance(won, dict):
        return False
    return (won.get("status"), won.get("result"), won.get("error")) == (
        sent["status"],
        sent.get("result"),
        sent.get("error"),
    )


class SyncApprovals(_Resource):
    """Calls and publishes parked until a human approves or rejects exactly what they would write."""

    def list(
        self, *, state: str | None = None, tool: str | None = None, agent: str | None = None
    ) -> builtins.list[Approval]:
        """The tenant's approvals, newest first."""
        params = query(state=state, tool=tool, agent=agent)
        answer = self._http.request("GET", tenant_path("approvals", self._scope), params=params)
        return parse(ApprovalList, answer).approvals

    def get(self, approval_id: str) -> Approval:
        return parse(Approval, self._http.request("GET", tenant_path("approvals", self._scope, approval_id)))

    def approve(self, approval_id: str, digest: str, *, reason: str | None = None) -> Approval:
        """Publish the parked call or record, once. digest: the one you looked at (DigestMismatch
        if it changed; AlreadyDecided, whose details say who decided, if it was decided)."""
        return self._decide(approval_id, "approve", digest, reason)

    def reject(self, approval_id: str, digest: str, *, reason: str | None = None) -> Approval:
        """Publish nothing; a call's caller gets a `rejected` result."""
        return self._decide(approval_id, "reject", digest, reason)

    def _decide(self, approval_id: str, verb: str, digest: str, reason: str | None) -> Approval:
        body = dump(Decision.model_validate(body_of(Decision, digest=digest, reason=reason)))
        answer = self._http.request(
            "POST", tenant_path("approvals", self._scope, approval_id, verb), json=body
        )
        return parse(Approval, answer)
