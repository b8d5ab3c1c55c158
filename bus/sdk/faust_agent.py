"""Write an agent as a Faust agent: while the app runs it is registered, heartbeats and
serves its inbox.

    app = faust.App("my-agents", broker="kafka://127.0.0.1:9092", web_enabled=False)

    @bus_agent(app, url="http://127.0.0.1:6066", key=KEY, namespace="demo", tenant="acme",
               agent_id="solver", capabilities=[{"name": "add", "input_schema": {...}}])
    async def solver(message: InboxMessage) -> JsonValue | None:
        return {"sum": sum(message.payload["numbers"])}   # goes back to the sender's inbox

When the app starts, the agent registers (already registered is fine), beats every
heartbeat interval, and pulls its inbox over HTTP into a Faust channel that a Faust agent
consumes. Each message goes to the handler; a non-None return value is sent to the
message's reply_to (else its sender) with the message's correlation id (else its
message id), under a message id derived from the original's, so a redelivery answers
with the same id.

Delivery is at least once: a message is acked only after the handler returned and its
answer was accepted; an exception nacks it (redelivered after the inbox's backoff,
dead-lettered after max_deliveries). With concurrency=1 (the default) messages are
handled one at a time, in inbox order. Only this module's own names are needed: it
imports no part of the bus that runs in a bus worker.

A BusAgent is a BusClient (bus.sdk.client) acting as its agent: solver.call_tool(...),
solver.tool_result(...), `async with solver.stream(...)` and the approval helpers work
from its handler. Without a Faust app, use BusClient itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import faust
from pydantic import JsonValue

from bus.agents.models import Capability, InboxMessage, OperatorState
from bus.sdk.client import BusAgentError, BusClient
from bus.subscriptions.models import PullResponse

log = logging.getLogger(__name__)
Handler = Callable[[InboxMessage], Awaitable[JsonValue | None]]
PULL_WAIT_MS = 5_000
__all__ = ["BusAgent", "BusAgentError", "BusClient", "bus_agent"]


class BusAgent(BusClient):
    """One agent of the bus run by a Faust app (made by bus_agent). As a BusClient acting as
    this agent it also sends messages, calls tools, writes streams (bus.sdk.client)."""

    def __init__(
        self,
        app: faust.App,
        handler: Handler,
        *,
        url: str,
        key: str,
        spec: dict[str, Any],
        concurrency: int,
        batch: int,
    ) -> None:
        super().__init__(url, key, namespace=spec["namespace"], tenant=spec["tenant"], agent_id=spec["id"])
        self.app = app
        self.handler = handler
        self.spec = spec
        self.path = f"/v1/agents/{spec['namespace']}/{spec['tenant']}/{spec['id']}"
        self.batch = batch
        self.state: OperatorState | None = None  # as the last heartbeat answered
        self.registered = asyncio.Event()
        self.channel = app.channel(maxsize=batch)
        name = f"bus-agent-{spec['namespace']}-{spec['tenant']}-{spec['id']}"
        app.agent(self.channel, name=name, concurrency=concurrency)(self._consume)
        app.task(self._serve_inbox)
        app.timer(interval=spec["heartbeat_interval_ms"] / 1000, name=f"{name}-heartbeat")(self._beat)

    @property
    def agent_key(self) -> str:
        return f"{self.spec['namespace']}/{self.spec['tenant']}/{self.spec['id']}"

    # -- what the app runs ---------------------------------------------------------------

    async def register(self) -> None:
        status, answer = await self.request("POST", "/v1/agents", self.spec)
        if status in (200, 409):  # 200: as registered already; 409: registered otherwise
            log.info("agent %s was registered already", self.agent_key)
        elif status != 201:
            raise BusAgentError(status, answer)
        self.registered.set()

    async def _beat(self) -> None:
        if not self.registered.is_set():
            return
        try:
            receipt = await self.call("POST", self.path + "/heartbeat", {}, ok=(202,))
        except BusAgentError as exc:  # the next beat tries again
            log.warning("heartbeat of %s refused: %s", self.agent_key, exc)
            return
        if receipt["state"] != self.state:
            log.info("agent %s is %s", self.agent_key, receipt["state"])
        self.state = receipt["state"]

    async def _serve_inbox(self) -> None:
        """Pull the inbox into the channel (which holds at most `batch`: backpressure)."""
        await self.register()
        await self._beat()
        session = secrets.token_urlsafe(12)
        try:
            while True:
                body = {"max_records": self.batch, "wait_ms": PULL_WAIT_MS, "session": session}
                pulled = PullResponse.model_validate(await self.call("POST", self.path + "/inbox/pull", body))
                for delivery in pulled.deliveries:
                    await self.channel.send(value=InboxMessage.from_delivery(delivery))
        finally:
            # What this run held unacked goes back now rather than at its ack deadline.
            try:
                await asyncio.shield(self.request("POST", self.path + "/inbox/release", {"session": session}))
            except (BusAgentError, aiohttp.ClientError, asyncio.CancelledError):
                pass
            await self.close()

    async def _consume(self, stream: faust.StreamT[InboxMessage]) -> None:
        async for message in stream:
            await self.handle(message)

    async def handle(self, message: InboxMessage) -> None:
        """Run the handler, send its answer, then ack; nack if any of it failed."""
        try:
            answer = await self.handler(message)
            if answer is not None and message.answer_to is not None:
                await self.send(
                    message.answer_to,
                    answer,
                    correlation_id=message.correlation_id or message.message_id,
                    message_id=reply_id(message),
                )
        except Exception as exc:
            log.warning("agent %s: message %s failed: %r", self.agent_key, message.message_id, exc)
            await self.settle("nack", message, reason=repr(exc)[:1000])
            return
        await self.settle("ack", message)

    async def settle(self, verb: str, message: InboxMessage, reason: str = "") -> None:
        body: dict[str, Any] = {"delivery_ids": [message.delivery_id]}
        if verb == "nack":
            body["reason"] = reason
        try:
            await self.call("POST", f"{self.path}/inbox/{verb}", body)
        except BusAgentError as exc:  # e.g. superseded: it was redelivered meanwhile and counts there
            log.warning("agent %s: %s of %s refused: %s", self.agent_key, verb, message.delivery_id, exc)


def reply_id(message: InboxMessage) -> str:
    """The same answer to the same message (a redelivery) gets the same id."""
    return hashlib.sha256(f"reply:{message.message_id}".encode()).hexdigest()[:32]


def bus_agent(
    app: faust.App,
    *,
    url: str,
    key: str,
    namespace: str,
    tenant: str,
    agent_id: str,
    capabilities: Sequence[Capability | dict[str, Any]] = (),
    display_name: str = "",
    description: str = "",
    labels: dict[str, str] | None = None,
    card: dict[str, Any] | None = None,
    heartbeat_interval_ms: int = 5_000,
    inbox: dict[str, int] | None = None,
    concurrency: int = 1,
    batch: int = 10,
) -> Callable[[Handler], BusAgent]:
    """Make handler an agent of the bus for as long as app runs (see the module docstring)."""
    spec: dict[str, Any] = {
        "namespace": namespace,
        "tenant": tenant,
        "id": agent_id,
        "display_name": display_name,
        "description": description,
        "capabilities": [
            c.model_dump(mode="json", exclude_none=True) if isinstance(c, Capability) else c
            for c in capabilities
        ],
        "labels": labels or {},
        "heartbeat_interval_ms": heartbeat_interval_ms,
    }
    if card is not None:
        spec["card"] = card
    if inbox is not None:
        spec["inbox"] = inbox

    def decorate(handler: Handler) -> BusAgent:
        return BusAgent(app, handler, url=url, key=key, spec=spec, concurrency=concurrency, batch=batch)

    return decorate
