"""The agent SDK's HTTP client: one agent's (or one operator's) view of the bus, with
typed helpers for messages, tool calls, token streams and approvals.

    async with BusClient("http://127.0.0.1:6066", KEY, namespace="demo", tenant="acme",
                         agent_id="planner") as bus:
        done = await bus.call_tool("trip-42", "searcher", "search_flights", {...}, wait_ms=20_000)
        async with bus.stream("trip-42", "reply-1") as s:
            await s.write("Two flights")

Every request is retried while the bus answers 502, 503 or 504 (an owner moving) or the
connection is lost, for up to RETRY_FOR_S; any other answer that is not a success raises
BusAgentError, whose `code` is the bus's stable error code. A request retried after a
lost connection may have gone through the first time: placing a call and posting a
result recognise their own earlier attempt (the bus's 409 carries what was written) and
answer as if it had been the first. Conversations are named by id (in the client's
tenant) or by namespace/tenant/id. Only bus.models is imported: no part of a worker.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp
from pydantic import JsonValue

from bus.approvals.models import Approval, ApprovalList, ApprovalState
from bus.sdk.streams import PostTransport, StreamChunk, StreamEvent, StreamGap, StreamWriter, sse_events
from bus.streams.models import StreamEnd
from bus.tools.models import CancelResult, ToolCall, ToolError, Usage

RETRIABLE_STATUSES = (502, 503, 504)
RETRY_FOR_S = 60.0
REQUEST_TIMEOUT_S = 35.0  # the longest ordinary request: an inbox pull of 5 s, plus margin
UNSETTLED = ("pending", "awaiting_approval")
MAX_WAIT_MS = 60_000  # what the bus holds one GET of a call for; longer waits take several
# A stream reader may wait long for its first chunk; the bus sends a keep-alive every 15 s.
SSE_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_read=60)
__all__ = ["BusAgentError", "BusClient"]


class BusAgentError(Exception):
    """The bus refused a request (a 4xx, or a 5xx that would not go away)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body

    @property
    def code(self) -> str | None:
        """The bus's stable error code (docs/errors.md), e.g. tool_call_timed_out."""
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None

    @property
    def details(self) -> Any:
        return self.body.get("error", {}).get("details") if isinstance(self.body, dict) else None


class BusClient:
    """HTTP access to the bus with one key, acting as agent_id of namespace/tenant (when given)."""

    def __init__(
        self, url: str, key: str, *, namespace: str, tenant: str, agent_id: str | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.namespace = namespace
        self.tenant = tenant
        self.agent_id = agent_id
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BusClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:  # made on first use: it needs the running loop
            self._http = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.key}"},
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def me(self) -> str:
        if self.agent_id is None:
            raise ValueError("this client acts as no agent: give BusClient an agent_id")
        return self.agent_id

    def tenant_path(self, kind: str) -> str:
        return f"/v1/{kind}/{self.namespace}/{self.tenant}"

    def conversation_key(self, conversation: str) -> str:
        """namespace/tenant/id of a conversation named by its id in this tenant, or by all three."""
        return conversation if "/" in conversation else f"{self.namespace}/{self.tenant}/{conversation}"

    def conversation_path(self, conversation: str) -> str:
        return f"/v1/conversations/{self.conversation_key(conversation)}"

    async def request(
        self, method: str, path: str, body: Any = None, timeout_s: float | None = None
    ) -> tuple[int, Any]:
        """(status, JSON body); retries what the bus calls retriable, and lost connections."""
        deadline = asyncio.get_running_loop().time() + RETRY_FOR_S
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s is not None else None
        while True:
            try:
                async with self.http.request(method, self.url + path, json=body, timeout=timeout) as r:
                    answer = await r.json(content_type=None)
                    if r.status not in RETRIABLE_STATUSES:
                        return r.status, answer
            except (aiohttp.ClientError, TimeoutError) as exc:
                answer = repr(exc)
            if asyncio.get_running_loop().time() > deadline:
                raise BusAgentError(503, answer)
            await asyncio.sleep(0.5)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        ok: Sequence[int] = (200,),
        timeout_s: float | None = None,
    ) -> Any:
        """The JSON body of an answer whose status is in ok; else BusAgentError."""
        status, answer = await self.request(method, path, body, timeout_s)
        if status not in ok:
            raise BusAgentError(status, answer)
        return answer

    # -- messages ------------------------------------------------------------------------

    async def send(
        self,
        to: str,
        payload: JsonValue,
        *,
        correlation_id: str | None = None,
        message_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send a message to agent `to` (an id of this tenant, or namespace/tenant/id) as this agent."""
        target = to if "/" in to else f"{self.namespace}/{self.tenant}/{to}"
        body: dict[str, Any] = {"from": self.me, "payload": payload, "headers": headers or {}}
        if correlation_id is not None:
            body["correlation_id"] = correlation_id
        if message_id is not None:
            body["message_id"] = message_id
        receipt: dict[str, Any] = await self.call("POST", f"/v1/agents/{target}/messages", body)
        return receipt

    # -- tool calls (docs/tool-calls.md) -------------------------------------------------

    async def call_tool(
        self,
        conversation: str,
        callee: str,
        tool: str,
        arguments: JsonValue = None,
        *,
        call_id: str | None = None,
        timeout_ms: int | None = None,
        parent_call_id: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        wait_ms: int | None = None,
    ) -> ToolCall:
        """Place a call as this agent; with wait_ms, wait that long for it to settle.

        The answer is the call: `pending` when wait_ms is None or ran out, else settled
        (`done`, `failed`, `timed_out`, `cancelled`) with its `result`. A call to a tool
        that requires approval comes back `awaiting_approval` at once, without waiting: it
        is in no conversation until a human approves it. call_id defaults to a new random
        id, so a retried placement is recognised as the same call.
        """
        body: dict[str, Any] = {
            "call_id": call_id or secrets.token_hex(16),
            "tool": tool,
            "arguments": {} if arguments is None else arguments,
            "caller": self.me,
            "callee": callee,
        }
        optional = {
            "timeout_ms": timeout_ms,
            "parent_call_id": parent_call_id,
            "correlation_id": correlation_id,
            "reply_to": reply_to,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        status, answer = await self.request(
            "POST", self.conversation_path(conversation) + "/tool-calls", body
        )
        if status == 201:
            placed = ToolCall.model_validate(answer)
        elif (refused := BusAgentError(status, answer)).code == "tool_call_exists":
            placed = await self._placed_before(body, refused)
        else:
            raise refused
        if wait_ms is None or placed.status != "pending":
            return placed
        return await self.wait_call(placed.call_id, wait_ms)

    async def _placed_before(self, body: dict[str, Any], refused: BusAgentError) -> ToolCall:
        """A 409 tool_call_exists: our own earlier attempt (a retry) when the call is the same."""
        try:
            found = await self.get_call(body["call_id"])
        except BusAgentError:
            raise refused from None
        same = (found.tool, found.callee, found.caller, found.arguments) == (
            body["tool"],
            body["callee"],
            body["caller"],
            body["arguments"],
        )
        if not same:
            raise refused
        return found

    async def get_call(self, call_id: str, wait_ms: int = 0) -> ToolCall:
        """The call now, or once it settled if that is within wait_ms (at most MAX_WAIT_MS)."""
        path = f"{self.tenant_path('tool-calls')}/{call_id}?wait_ms={wait_ms}"
        answer = await self.call("GET", path, timeout_s=wait_ms / 1000 + REQUEST_TIMEOUT_S)
        return ToolCall.model_validate(answer)

    async def wait_call(self, call_id: str, wait_ms: int) -> ToolCall:
        """The call once it settled, or as it is after wait_ms (any length: several waits)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_ms / 1000
        while True:
            left = max(0, int((deadline - loop.time()) * 1000))
            found = await self.get_call(call_id, min(left, MAX_WAIT_MS))
            if found.status not in UNSETTLED or left <= MAX_WAIT_MS:
                return found

    async def tool_result(
        self,
        conversation: str,
        call_id: str,
        result: JsonValue = None,
        *,
        error: ToolError | None = None,
        usage: Usage | None = None,
    ) -> ToolCall:
        """Post the result of a call, once: `ok` with result, or `error` when error is given.

        The answer is the settled call. A call settled otherwise first raises BusAgentError
        with code tool_result_exists, tool_call_cancelled or tool_call_timed_out (its
        details carry the result that won); our own earlier attempt does not.
        """
        body: dict[str, Any] = {"call_id": call_id, "status": "ok" if error is None else "error"}
        body["result"] = result
        if error is not None:
            body["error"] = error.model_dump(mode="json")
        if usage is not None:
            body["usage"] = usage.model_dump(mode="json")
        path = self.conversation_path(conversation) + "/tool-results"
        status, answer = await self.request("POST", path, body)
        if status == 200:
            return ToolCall.model_validate(answer)
        refused = BusAgentError(status, answer)
        won = refused.details.get("result") if isinstance(refused.details, dict) else None
        if refused.code == "tool_result_exists" and _same_result(body, won):
            return await self.get_call(call_id)
        raise refused

    async def cancel_call(self, call_id: str, reason: str = "") -> list[str]:
        """Cancel a pending call and every pending call below it; the ids cancelled, the call first."""
        answer = await self.call(
            "POST", f"{self.tenant_path('tool-calls')}/{call_id}/cancel", {"reason": reason}
        )
        return CancelResult.model_validate(answer).cancelled

    # -- token streams (docs/streams.md) -------------------------------------------------

    def stream(
        self,
        conversation: str,
        stream_id: str | None = None,
        *,
        sender: bool = True,
        transport: Literal["http", "ws"] = "http",
    ) -> StreamWriter:
        """A writer for a stream, used as `async with` (see bus.sdk.streams for how it batches).

        stream_id defaults to a new random id (the writer's `stream_id`). With sender (the
        default) the chunks and the end name this client's agent, if it has one. transport
        "ws" writes over one WebSocket instead of a POST per batch: much cheaper for the
        bus, and a consumer's cancel arrives at once.
        """
        sid = stream_id or secrets.token_hex(8)
        agent = self.agent_id if sender else None
        if transport == "ws":
            from bus.sdk.socket import SocketTransport  # late: it needs BusAgentError from here

            return StreamWriter(SocketTransport(self, self.stream_path(conversation, sid), agent), sid, agent)
        return StreamWriter(PostTransport(self._post, self.conversation_path(conversation)), sid, agent)

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        return await self.call("POST", path, body)

    def stream_path(self, conversation: str, stream_id: str) -> str:
        return f"/v1/streams/{self.conversation_key(conversation)}/{stream_id}"

    async def read_stream(
        self,
        conversation: str,
        stream_id: str,
        *,
        from_chunk: int = 0,
        gap_timeout_ms: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """The stream's events in chunk_seq order: StreamChunk and StreamGap, then its StreamEnd
        (a chunk that came after its gap was reported comes late: StreamChunk(late=True)).

        Waits for a stream that has not started. A lost connection (or a 502-504) is
        resumed after the last chunk or gap seen, for up to RETRY_FOR_S without progress,
        so each chunk comes once; then BusAgentError 503. Other refusals raise at once.
        """
        loop = asyncio.get_running_loop()
        deadline, next_chunk = loop.time() + RETRY_FOR_S, from_chunk
        lost: Any = None
        while loop.time() <= deadline:
            query = {"from_chunk": next_chunk}
            if gap_timeout_ms is not None:
                query["gap_timeout_ms"] = gap_timeout_ms
            url = f"{self.url}{self.stream_path(conversation, stream_id)}?{urlencode(query)}"
            try:
                async with self.http.get(url, timeout=SSE_TIMEOUT) as r:
                    if r.status != 200:
                        lost = await r.json(content_type=None)
                        if r.status not in RETRIABLE_STATUSES:
                            raise BusAgentError(r.status, lost)
                    else:
                        async for event in sse_events(r):
                            yield event
                            if isinstance(event, StreamEnd):
                                return
                            next_chunk = max(next_chunk, event_after(event))
                            deadline = loop.time() + RETRY_FOR_S  # progress: the retry budget starts again
                        lost = "the connection closed before the end"
            except (aiohttp.ClientError, TimeoutError) as exc:
                lost = repr(exc)
            await asyncio.sleep(0.5)
        raise BusAgentError(503, lost)

    async def cancel_stream(self, conversation: str, stream_id: str, reason: str = "") -> StreamEnd:
        """Cancel a stream as its consumer: the producer's next write is refused (stream_cancelled)."""
        path = self.stream_path(conversation, stream_id) + "/cancel"
        return StreamEnd.model_validate(await self.call("POST", path, {"reason": reason}))

    # -- approvals (docs/approvals.md) ---------------------------------------------------

    async def approvals(
        self, state: ApprovalState | None = None, *, tool: str | None = None, agent: str | None = None
    ) -> list[Approval]:
        """The tenant's approvals, newest first, filtered by state, tool and agent."""
        query = {k: v for k, v in {"state": state, "tool": tool, "agent": agent}.items() if v is not None}
        path = self.tenant_path("approvals") + (f"?{urlencode(query)}" if query else "")
        return ApprovalList.model_validate(await self.call("GET", path)).approvals

    async def approval(self, approval_id: str) -> Approval:
        return Approval.model_validate(
            await self.call("GET", f"{self.tenant_path('approvals')}/{approval_id}")
        )

    async def approve(self, approval_id: str, digest: str, reason: str = "") -> Approval:
        """Publish the parked call, once (needs a manage key). digest: the one you looked at.

        Refused with digest_mismatch when the approval is not what you saw, already_decided
        when it was decided (after a lost connection that may be your own decision: the
        error's details.decision says who decided).
        """
        return await self._decide(approval_id, "approve", digest, reason)

    async def reject(self, approval_id: str, digest: str, reason: str = "") -> Approval:
        """Publish nothing; the caller gets a `rejected` result in its inbox."""
        return await self._decide(approval_id, "reject", digest, reason)

    async def _decide(self, approval_id: str, verb: str, digest: str, reason: str) -> Approval:
        body = {"digest": digest, "reason": reason}
        answer = await self.call("POST", f"{self.tenant_path('approvals')}/{approval_id}/{verb}", body)
        return Approval.model_validate(answer)


def event_after(event: StreamChunk | StreamGap) -> int:
    """Where a reader resumes after this event."""
    return event.chunk_seq + 1 if isinstance(event, StreamChunk) else event.to_chunk_seq + 1


def _same_result(sent: dict[str, Any], won: Any) -> bool:
    """Whether the result that settled a call is the one we sent (a retry of ours)."""
    if not isinstance(won, dict):
        return False
    return (won.get("status"), won.get("result"), won.get("error")) == (
        sent["status"],
        sent["result"],
        sent.get("error"),
    )
