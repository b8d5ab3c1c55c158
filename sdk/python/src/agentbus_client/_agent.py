"""The agent runtime: an agent as a plain asyncio program (no Faust, no Kafka client).

    runtime = AgentRuntime(client.with_scope(agent_id="solver"))

    @runtime.tool("add", input_schema={"type": "object", "required": ["numbers"]})
    async def add(call: ToolInvocation) -> JsonValue:
        return {"sum": sum(call.arguments["numbers"])}

    @runtime.on("message")
    async def chat(message: InboxMessage) -> JsonValue | None:
        return {"echo": message.payload}          # goes back to reply_to, else the sender

    await runtime.run()                           # or: async with runtime: ...

run() registers the agent with its tools as capabilities (an identical registration is
fine; one registered otherwise is used as it is, with a warning), beats every heartbeat
interval in the background, and pulls the inbox under one session. Each message goes to
the handler of its kind (`bus.kind`: message, tool_call, tool_result, tool_cancel, ...).

Delivery is at least once: a message is acked only after its handler returned (and its
answer was accepted); an exception nacks it (redelivered after the inbox's backoff,
dead-lettered after max_deliveries). A message without a handler is acked. With
concurrency=1 (the default) messages are handled one at a time, in inbox order. A tool
call's handler gets the arguments (validated by the bus against the input schema, and
parsed into `arguments_model` when given); what it returns is posted as the `ok` result,
a ToolFailure as an `error` result with its code, any other exception as `error` with
code `handler_failed`. Stopping (stop(), cancelling run(), leaving `async with`) lets
handlers that started finish and gives back what the session holds unacked at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pydantic import BaseModel, JsonValue, ValidationError
from typing_extensions import Self

from agentbus_client._async._client import AsyncClient
from agentbus_client._errors import AgentbusError, AgentExists
from agentbus_client._tracing import continued
from agentbus_client.models.agents import Capability, InboxMessage, OperatorState
from agentbus_client.models.tools import ToolCall

log = logging.getLogger("agentbus_client.agent")
MessageHandler = Callable[[InboxMessage], Awaitable[JsonValue | None]]
__all__ = ["AgentRuntime", "ToolFailure", "ToolInvocation", "reply_id"]


class ToolFailure(Exception):
    """Raised by a tool handler: the call fails with this code and message."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ToolInvocation:
    """One call of a tool this agent serves: the call, its arguments (or their model)."""

    call: ToolCall
    arguments: Any
    message: InboxMessage
    client: AsyncClient = field(repr=False)


ToolHandler = Callable[[ToolInvocation], Awaitable[JsonValue]]


@dataclass(frozen=True)
class _Tool:
    capability: Capability
    handler: ToolHandler
    arguments_model: type[BaseModel] | None


class AgentRuntime:
    """Runs one agent of the bus; see the module docstring."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        agent_id: str | None = None,
        registration: dict[str, Any] | None = None,
        concurrency: int = 1,
        batch: int = 10,
        pull_wait_ms: int = 5_000,
    ) -> None:
        self.agent_id = client.scope.me(agent_id)
        self.client = client.with_scope(agent_id=self.agent_id)
        self.registration = dict(registration or {})  # more AgentSpec fields (description, labels, ...)
        self.concurrency = concurrency
        self.batch = batch
        self.pull_wait_ms = pull_wait_ms
        self.state: OperatorState | None = None  # as the last heartbeat answered
        self.handled = 0
        self._interval_s = 10.0  # replaced by the registration's heartbeat interval
        self.failed = 0
        self._handlers: dict[str, MessageHandler] = {}
        self._tools: dict[str, _Tool] = {}
        self._stopping = asyncio.Event()
        self._running: asyncio.Task[None] | None = None
        self.registered = asyncio.Event()

    # -- declaring -----------------------------------------------------------------------

    def on(self, kind: str) -> Callable[[MessageHandler], MessageHandler]:
        """Handle inbox messages of this kind ("*": of every kind without a handler of its own);
        a non-None return value is sent as the answer."""

        def register(handler: MessageHandler) -> MessageHandler:
            self._handlers[kind] = handler
            return handler

        return register

    def tool(
        self,
        name: str,
        *,
        description: str = "",
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        arguments_model: type[BaseModel] | None = None,
        requires_approval: bool = False,
    ) -> Callable[[ToolHandler], ToolHandler]:
        """Serve a tool; it is registered as a capability (input_schema defaults to the JSON
        Schema of arguments_model, else any object)."""
        if input_schema is None:
            input_schema = arguments_model.model_json_schema() if arguments_model else {"type": "object"}
        capability = Capability.model_validate(
            {
                "name": name,
                "description": description,
                "input_schema": input_schema,
                "output_schema": output_schema,
                "requires_approval": requires_approval,
            },
            strict=False,
        )

        def register(handler: ToolHandler) -> ToolHandler:
            self._tools[name] = _Tool(capability, handler, arguments_model)
            return handler

        return register

    # -- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Register, beat and serve the inbox until stop() (or cancellation)."""
        await self.register()
        beating = asyncio.create_task(self._beat_forever(), name=f"heartbeat {self.agent_id}")
        session = secrets.token_urlsafe(12)
        working: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self.concurrency)
        try:
            while not self._stopping.is_set():
                for message in await self.pull(session):
                    await slots.acquire()
                    task = asyncio.create_task(self._handle_in_slot(message, slots))
                    working.add(task)
                    task.add_done_callback(working.discard)
        finally:
            beating.cancel()
            if working:
                await asyncio.gather(*working, return_exceptions=True)
            await self.release(session)

    async def stop(self) -> None:
        """Stop pulling; run() returns once the handlers that started are done."""
        self._stopping.set()
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    async def __aenter__(self) -> Self:
        self._running = asyncio.create_task(self.run(), name=f"agent {self.agent_id}")
        waiting = asyncio.create_task(self.registered.wait())
        await asyncio.wait({self._running, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._running.done():
            self._running.result()  # registration failed: raise why
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def register(self) -> None:
        """Register the agent with its tools (and the registration's own capabilities)."""
        declared = list(self.registration.get("capabilities", []))
        spec = {**self.registration, "capabilities": declared + [t.capability for t in self._tools.values()]}
        try:
            agent = await self.client.agents.register(self.agent_id, **spec)
            self._interval_s = agent.heartbeat_interval_ms / 1000
        except AgentExists:
            log.warning("agent %s is registered otherwise: running with that registration", self.agent_id)
            self._interval_s = (await self.client.agents.get()).heartbeat_interval_ms / 1000
        self.registered.set()

    @property
    def heartbeat_interval_s(self) -> float:
        return self._interval_s

    async def beat(self) -> None:
        """One heartbeat; a failure is logged (the next beat tries again)."""
        try:
            receipt = await self.client.agents.heartbeat()
        except AgentbusError as exc:
            log.warning("heartbeat of %s failed: %r", self.agent_id, exc)
            return
        if receipt.state != self.state:
            log.info("agent %s is %s", self.agent_id, receipt.state)
        self.state = receipt.state

    async def _beat_forever(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self._interval_s)

    async def pull(self, session: str) -> list[InboxMessage]:
        """The next messages of the inbox under this session ([] after a failure, logged)."""
        try:
            return await self.client.agents.pull(
                max_records=self.batch, wait_ms=self.pull_wait_ms, session=session
            )
        except AgentbusError as exc:  # retried already; keep serving rather than die
            log.warning("agent %s: inbox pull failed: %r", self.agent_id, exc)
            await asyncio.sleep(1.0)
            return []

    async def release(self, session: str) -> None:
        """Give back what the session holds unacked (on the way out: failures are ignored)."""
        try:  # what this run held unacked goes back now rather than at its ack deadline
            await asyncio.shield(self.client.agents.release(session))
        except (AgentbusError, asyncio.CancelledError):
            pass

    async def _handle_in_slot(self, message: InboxMessage, slots: asyncio.Semaphore) -> None:
        try:
            await self.handle(message)
        finally:
            slots.release()

    async def handle(self, message: InboxMessage) -> None:
        """Run the message's handler, send its answer, then ack; nack if any of it failed.
        It runs in the trace of the message's traceparent: the answer continues it."""
        with continued(message.headers, f"agentbus handle {message.kind}"):
            await self._handle(message)

    async def _handle(self, message: InboxMessage) -> None:
        try:
            if message.kind == "tool_call" and self._tools:
                await self._serve_call(message)
            else:
                await self._answer(message)
        except Exception as exc:
            self.failed += 1
            log.warning("agent %s: message %s failed: %r", self.agent_id, message.message_id, exc)
            await self._settle(message, failed=repr(exc)[:1000])
            return
        self.handled += 1
        await self._settle(message)

    async def _answer(self, message: InboxMessage) -> None:
        handler = self._handlers.get(message.kind, self._handlers.get("*"))
        if handler is None:
            log.debug("agent %s: no handler for %s messages; acking", self.agent_id, message.kind)
            return
        answer = await handler(message)
        if answer is not None and message.answer_to is not None:
            await self.client.agents.send(
                message.answer_to,
                answer,
                correlation_id=message.correlation_id or message.message_id,
                message_id=reply_id(message),
            )

    async def _serve_call(self, message: InboxMessage) -> None:
        call = ToolCall.model_validate(message.payload)
        tool = self._tools.get(call.tool)
        if tool is None:
            await self._fail_call(
                call, "tool_not_served", f"agent {self.agent_id} serves no tool {call.tool}"
            )
            return
        try:
            arguments: Any = call.arguments
            if tool.arguments_model is not None:
                arguments = tool.arguments_model.model_validate(call.arguments)
        except ValidationError as exc:
            await self._fail_call(call, "invalid_arguments", str(exc)[:4096])
            return
        try:
            output = await tool.handler(ToolInvocation(call, arguments, message, self.client))
        except ToolFailure as failure:
            await self._fail_call(call, failure.code, failure.message)
            return
        except Exception as exc:
            await self._fail_call(call, "handler_failed", repr(exc)[:4096])
            return
        await self._post(call, output)

    async def _post(self, call: ToolCall, output: JsonValue) -> None:
        try:
            await self.client.tool_calls.post_result(call.conversation, call.call_id, output)
        except AgentbusError as exc:
            if getattr(exc, "code", "") not in (
                "tool_call_cancelled",
                "tool_call_timed_out",
                "tool_result_exists",
            ):
                raise
            log.info("agent %s: call %s settled before its result: %s", self.agent_id, call.call_id, exc)

    async def _fail_call(self, call: ToolCall, code: str, text: str) -> None:
        try:
            await self.client.tool_calls.post_result(
                call.conversation, call.call_id, error={"code": code, "message": text[:4096]}
            )
        except AgentbusError as exc:
            if getattr(exc, "code", "") not in (
                "tool_call_cancelled",
                "tool_call_timed_out",
                "tool_result_exists",
            ):
                raise

    async def _settle(self, message: InboxMessage, failed: str | None = None) -> None:
        try:
            if failed is None:
                await self.client.agents.ack([message.delivery_id])
            else:
                await self.client.agents.nack([message.delivery_id], reason=failed)
        except AgentbusError as exc:  # e.g. superseded: it was redelivered meanwhile and counts there
            log.warning("agent %s: settling %s refused: %r", self.agent_id, message.delivery_id, exc)


def reply_id(message: InboxMessage) -> str:
    """The same answer to the same message (a redelivery) gets the same id."""
    return hashlib.sha256(f"reply:{message.message_id}".encode()).hexdigest()[:32]
