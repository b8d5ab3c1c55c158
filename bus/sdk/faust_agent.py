"""Write an agent as a Faust agent: while the app runs it is registered, heartbeats and
serves its inbox. Built on agentbus-client's AgentRuntime (sdk/python), with Faust doing
the scheduling: a task pulls the inbox into a channel, a Faust agent consumes it, a timer
beats.

    app = faust.App("my-agents", broker="kafka://127.0.0.1:9092", web_enabled=False)

    @bus_agent(app, url="http://127.0.0.1:6066", key=KEY, namespace="demo", tenant="acme",
               agent_id="solver", capabilities=[{"name": "add", "input_schema": {...}}])
    async def solver(message: InboxMessage) -> JsonValue | None:
        return {"sum": sum(message.payload["numbers"])}   # goes back to the sender's inbox

When the app starts, the agent registers (already registered is fine), beats every
heartbeat interval, and pulls its inbox over HTTP into a Faust channel. Every message,
of any kind, goes to the handler; a non-None return value is sent to the message's
reply_to (else its sender) with the message's correlation id (else its message id),
under a message id derived from the original's, so a redelivery answers with the same id.

Delivery is at least once: a message is acked only after the handler returned and its
answer was accepted; an exception nacks it (redelivered after the inbox's backoff,
dead-lettered after max_deliveries). With concurrency=1 (the default) messages are
handled one at a time, in inbox order. Only the client is imported: no part of the bus
that runs in a bus worker.

`solver.client` is an agentbus_client.AsyncClient acting as the agent: tool calls,
streams, conversations and approvals work from its handler. Without Faust, use
agentbus_client.AgentRuntime directly.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from agentbus_client import AgentRuntime, AsyncClient
from agentbus_client.models import Capability, InboxMessage, OperatorState, SendReceipt
from pydantic import JsonValue

Handler = Callable[[InboxMessage], Awaitable[JsonValue | None]]
PULL_WAIT_MS = 5_000
__all__ = ["BusAgent", "bus_agent"]


class BusAgent:
    """One agent of the bus run by a Faust app (made by bus_agent)."""

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
        self.app = app
        self.spec = spec
        self.client = AsyncClient(
            url, key, namespace=spec["namespace"], tenant=spec["tenant"], agent_id=spec["id"]
        )
        registration = {k: v for k, v in spec.items() if k not in ("namespace", "tenant", "id")}
        self.runtime = AgentRuntime(
            self.client, registration=registration, batch=batch, pull_wait_ms=PULL_WAIT_MS
        )
        self.runtime.on("*")(handler)
        self.channel = app.channel(maxsize=batch)
        name = f"bus-agent-{spec['namespace']}-{spec['tenant']}-{spec['id']}"
        app.agent(self.channel, name=name, concurrency=concurrency)(self._consume)
        app.task(self._serve_inbox)
        app.timer(interval=spec["heartbeat_interval_ms"] / 1000, name=f"{name}-heartbeat")(self._beat)

    @property
    def registered(self) -> Any:
        """An asyncio.Event set once the agent is registered."""
        return self.runtime.registered

    @property
    def state(self) -> OperatorState | None:
        """The operator state as the last heartbeat answered."""
        return self.runtime.state

    async def send(self, to: str, payload: JsonValue, **options: Any) -> SendReceipt:
        """Send a message to agent `to` as this agent (options: agents.send's)."""
        return await self.client.agents.send(to, payload, **options)

    async def _beat(self) -> None:
        if self.runtime.registered.is_set():
            await self.runtime.beat()

    async def _serve_inbox(self) -> None:
        """Pull the inbox into the channel (which holds at most `batch`: backpressure)."""
        await self.runtime.register()
        await self.runtime.beat()
        session = secrets.token_urlsafe(12)
        try:
            while True:
                for message in await self.runtime.pull(session):
                    await self.channel.send(value=message)
        finally:
            await self.runtime.release(session)
            await self.client.aclose()

    async def _consume(self, stream: faust.StreamT[InboxMessage]) -> None:
        async for message in stream:
            await self.runtime.handle(message)


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
        "capabilities": list(capabilities),
        "labels": labels or {},
        "heartbeat_interval_ms": heartbeat_interval_ms,
        "card": card,
        "inbox": inbox,
    }

    def decorate(handler: Handler) -> BusAgent:
        return BusAgent(app, handler, url=url, key=key, spec=spec, concurrency=concurrency, batch=batch)

    return decorate
