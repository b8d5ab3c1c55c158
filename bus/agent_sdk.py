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

from bus.models.agents import Capability, InboxMessage, OperatorState
from bus.models.subscriptions import PullResponse

log = logging.getLogger(__name__)
Handler = Callable[[InboxMessage], Awaitable[JsonValue | None]]
RETRIABLE_STATUSES = (502, 503, 504)
RETRY_FOR_S = 60.0
PULL_WAIT_MS = 5_000


class BusAgentError(Exception):
    """The bus refused a request the agent made (a 4xx, or a 5xx that would not go away)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


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
        self.handler = handler
        self.url = url.rstrip("/")
        self.key = key
        self.spec = spec
        self.path = f"/v1/agents/{spec['namespace']}/{spec['tenant']}/{spec['id']}"
        self.batch = batch
        self.state: OperatorState | None = None  # as the last heartbeat answered
        self.registered = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self.channel = app.channel(maxsize=batch)
        name = f"bus-agent-{spec['namespace']}-{spec['tenant']}-{spec['id']}"
        app.agent(self.channel, name=name, concurrency=concurrency)(self._consume)
        app.task(self._serve_inbox)
        app.timer(interval=spec["heartbeat_interval_ms"] / 1000, name=f"{name}-heartbeat")(self._beat)

    @property
    def agent_key(self) -> str:
        return f"{self.spec['namespace']}/{self.spec['tenant']}/{self.spec['id']}"

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:  # made on first use: it needs the running loop
            self._http = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.key}"},
                timeout=aiohttp.ClientTimeout(total=PULL_WAIT_MS / 1000 + 30),
            )
        return self._http

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON body); retries what the bus calls retriable, and lost connections."""
        deadline = asyncio.get_running_loop().time() + RETRY_FOR_S
        while True:
            try:
                async with self.http.request(method, self.url + path, json=body) as r:
                    answer = await r.json(content_type=None)
                    if r.status not in RETRIABLE_STATUSES:
                        return r.status, answer
            except (aiohttp.ClientError, TimeoutError) as exc:
                answer = repr(exc)
            if asyncio.get_running_loop().time() > deadline:
                raise BusAgentError(503, answer)
            await asyncio.sleep(0.5)

    async def call(self, method: str, path: str, body: Any = None, ok: Sequence[int] = (200,)) -> Any:
        status, answer = await self.request(method, path, body)
        if status not in ok:
            raise BusAgentError(status, answer)
        return answer

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
        target = to if "/" in to else f"{self.spec['namespace']}/{self.spec['tenant']}/{to}"
        body: dict[str, Any] = {"from": self.spec["id"], "payload": payload, "headers": headers or {}}
        if correlation_id is not None:
            body["correlation_id"] = correlation_id
        if message_id is not None:
            body["message_id"] = message_id
        receipt: dict[str, Any] = await self.call("POST", f"/v1/agents/{target}/messages", body)
        return receipt

    # -- what the app runs ---------------------------------------------------------------

    async def register(self) -> None:
        status, answer = await self.request("POST", "/v1/agents", self.spec)
        if status == 409:
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
            if self._http is not None:
                await self._http.close()
                self._http = None

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
