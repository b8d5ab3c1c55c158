"""Agents (registry, heartbeats, messages, inbox) and conversations."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from pydantic import JsonValue

from agentbus_client._async._admin import _Resource
from agentbus_client._async._events import AsyncEventStream
from agentbus_client._events import ConversationEvent, conversation_event, delivery, is_conversation_end
from agentbus_client._shared import body_of, keyed_path, new_message_id, parse, path, query
from agentbus_client.models.agents import (
    Agent,
    AgentList,
    AgentMessageSpec,
    AgentSpec,
    Capability,
    HeartbeatReceipt,
    HeartbeatRequest,
    InboxMessage,
    SendReceipt,
    StateChange,
)
from agentbus_client.models.conversations import (
    Conversation,
    ConversationList,
    ConversationSpec,
    Message,
    MessagePage,
    MessageSpec,
    TransitionRequest,
)
from agentbus_client.models.subscriptions import (
    AckRequest,
    AckResponse,
    Delivery,
    LagReport,
    NackRequest,
    NackResponse,
    PullRequest,
    PullResponse,
    ReleaseRequest,
    ReleaseResponse,
)


class AsyncAgents(_Resource):
    """The tenant's agents; `agent` arguments default to the client's agent_id."""

    async def register(
        self,
        agent_id: str | None = None,
        *,
        capabilities: Sequence[Capability | dict[str, Any]] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        card: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        heartbeat_interval_ms: int | None = None,
        state: Literal["enabled", "draining", "disabled"] | None = None,
        inbox: dict[str, int] | None = None,
    ) -> Agent:
        """Register the agent (201), or get it back unchanged when the same registration
        exists (200); AgentExists when it is registered otherwise."""
        namespace, tenant, agent = self._scope.key_of(self._scope.me(agent_id))
        body = body_of(
            AgentSpec,
            namespace=namespace,
            tenant=tenant,
            id=agent,
            capabilities=list(capabilities) if capabilities is not None else None,
            display_name=display_name,
            description=description,
            card=card,
            labels=labels,
            heartbeat_interval_ms=heartbeat_interval_ms,
            state=state,
            inbox=inbox,
        )
        return parse(Agent, await self._http.request("POST", path("agents"), json=body))

    async def list(
        self,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        capability: str | None = None,
        liveness: str | None = None,
        state: str | None = None,
        label: str | None = None,
    ) -> builtins.list[Agent]:
        params = query(
            namespace=namespace,
            tenant=tenant,
            capability=capability,
            liveness=liveness,
            state=state,
            label=label,
        )
        return parse(AgentList, await self._http.request("GET", path("agents"), params=params)).agents

    async def get(self, agent: str | None = None) -> Agent:
        return parse(Agent, await self._http.request("GET", self._path(agent)))

    async def delete(self, agent: str | None = None) -> Agent:
        return parse(Agent, await self._http.request("DELETE", self._path(agent)))

    async def set_state(
        self,
        state: Literal["enabled", "draining", "disabled"],
        *,
        agent: str | None = None,
        reason: str | None = None,
    ) -> Agent:
        body = body_of(StateChange, state=state, reason=reason)
        return parse(Agent, await self._http.request("PUT", self._path(agent, "state"), json=body))

    async def heartbeat(self, agent: str | None = None, *, status: str | None = None) -> HeartbeatReceipt:
        """One beat; the receipt says the operator state (a draining agent should finish up)."""
        body = body_of(HeartbeatRequest, status=status)
        return parse(
            HeartbeatReceipt, await self._http.request("POST", self._path(agent, "heartbeat"), json=body)
        )

    async def send(
        self,
        to: str,
        payload: JsonValue,
        *,
        sender: str | None = None,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        message_id: str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> SendReceipt:
        """Put a message in agent `to`'s inbox, from sender (default: the client's agent, if any)."""
        body = body_of(
            AgentMessageSpec,
            payload=payload,
            reply_to=reply_to,
            correlation_id=correlation_id,
            message_id=message_id or new_message_id(),
            headers=headers,
            content_type=content_type,
            **{"from": sender or self._scope.agent_id},
        )
        return parse(SendReceipt, await self._http.request("POST", self._path(to, "messages"), json=body))

    async def pull(
        self,
        agent: str | None = None,
        *,
        max_records: int | None = None,
        wait_ms: int | None = None,
        session: str | None = None,
    ) -> builtins.list[InboxMessage]:
        """Up to max_records inbox messages, waiting up to wait_ms for the first."""
        body = body_of(PullRequest, max_records=max_records, wait_ms=wait_ms, session=session)
        timeout = None if wait_ms is None else self._http.timeouts.read + wait_ms / 1000
        answer = await self._http.request(
            "POST", self._path(agent, "inbox", "pull"), json=body, timeout=timeout
        )
        return [InboxMessage.from_delivery(d) for d in parse(PullResponse, answer).deliveries]

    async def ack(self, delivery_ids: Sequence[str], *, agent: str | None = None) -> int:
        body = body_of(AckRequest, delivery_ids=list(delivery_ids))
        return parse(
            AckResponse, await self._http.request("POST", self._path(agent, "inbox", "ack"), json=body)
        ).acked

    async def nack(
        self,
        delivery_ids: Sequence[str],
        *,
        agent: str | None = None,
        action: Literal["redeliver", "dead_letter"] | None = None,
        reason: str | None = None,
    ) -> NackResponse:
        body = body_of(NackRequest, delivery_ids=list(delivery_ids), action=action, reason=reason)
        answer = await self._http.request("POST", self._path(agent, "inbox", "nack"), json=body)
        return parse(NackResponse, answer)

    async def release(self, session: str, *, agent: str | None = None) -> int:
        body = body_of(ReleaseRequest, session=session)
        answer = await self._http.request("POST", self._path(agent, "inbox", "release"), json=body)
        return parse(ReleaseResponse, answer).released

    async def inbox_lag(self, agent: str | None = None) -> LagReport:
        """How far the agent's inbox is behind: per partition, unacked, in flight, oldest age."""
        return parse(LagReport, await self._http.request("GET", self._path(agent, "inbox", "lag")))

    def inbox_events(self, agent: str | None = None) -> AsyncEventStream[Delivery]:
        """The inbox as Server-Sent Events (a session: a drop gives back what it held)."""
        return AsyncEventStream(self._http, self._path(agent, "inbox"), delivery)

    def _path(self, agent: str | None, *rest: str) -> str:
        return keyed_path("agents", self._scope, self._scope.me(agent), *rest)


class AsyncConversations(_Resource):
    """Conversations: ordered threads of envelopes, appended, replayed and followed live."""

    async def create(
        self,
        conversation_id: str | None = None,
        *,
        participants: Sequence[str] | None = None,
        title: str | None = None,
        metadata: dict[str, JsonValue] | None = None,
        labels: dict[str, str] | None = None,
    ) -> Conversation:
        namespace, tenant = self._scope.tenant_parts()
        body = body_of(
            ConversationSpec,
            namespace=namespace,
            tenant=tenant,
            id=conversation_id,
            participants=list(participants) if participants is not None else None,
            title=title,
            metadata=metadata,
            labels=labels,
        )
        return parse(Conversation, await self._http.request("POST", path("conversations"), json=body))

    async def list(
        self,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        participant: str | None = None,
        state: str | None = None,
        label: str | None = None,
        active_since: int | None = None,
    ) -> builtins.list[Conversation]:
        params = query(
            namespace=namespace,
            tenant=tenant,
            participant=participant,
            state=state,
            label=label,
            active_since=active_since,
        )
        answer = await self._http.request("GET", path("conversations"), params=params)
        return parse(ConversationList, answer).conversations

    async def get(self, conversation: str) -> Conversation:
        return parse(Conversation, await self._http.request("GET", self._path(conversation)))

    async def delete(self, conversation: str) -> Conversation:
        return parse(Conversation, await self._http.request("DELETE", self._path(conversation)))

    async def transition(
        self,
        conversation: str,
        to: Literal["open", "active", "paused", "closed", "archived"],
        *,
        reason: str | None = None,
    ) -> Conversation:
        body = body_of(TransitionRequest, to=to, reason=reason)
        answer = await self._http.request("POST", self._path(conversation, "transition"), json=body)
        return parse(Conversation, answer)

    async def append(
        self,
        conversation: str,
        payload: JsonValue,
        *,
        sender: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, JsonValue] | None = None,
        message_id: str | None = None,
    ) -> Message:
        """Append a message as sender (default: the client's agent). message_id defaults to a
        fresh id made here, so a retried append returns the first one instead of a second."""
        body = body_of(
            MessageSpec,
            sender=self._scope.me(sender),
            payload=payload,
            content_type=content_type,
            metadata=metadata,
            message_id=message_id or new_message_id(),
        )
        return parse(
            Message, await self._http.request("POST", self._path(conversation, "messages"), json=body)
        )

    async def messages(
        self,
        conversation: str,
        *,
        from_seq: int | None = None,
        to_seq: int | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> MessagePage:
        """One page of the thread; page.next_from_seq continues it (None at the end)."""
        params = query(from_seq=from_seq, to_seq=to_seq, since=since, limit=limit)
        answer = await self._http.request("GET", self._path(conversation, "messages"), params=params)
        return parse(MessagePage, answer)

    async def replay(
        self,
        conversation: str,
        *,
        from_seq: int = 1,
        to_seq: int | None = None,
        since: int | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Message]:
        """Every envelope from from_seq (to to_seq, or appended since a unix ms), page by page."""
        next_seq: int | None = from_seq
        while next_seq is not None:
            page = await self.messages(
                conversation, from_seq=next_seq, to_seq=to_seq, since=since, limit=page_size
            )
            for message in page.messages:
                yield message
            next_seq = page.next_from_seq

    def follow(
        self, conversation: str, *, from_seq: int | None = None, last_event_id: str | None = None
    ) -> AsyncEventStream[ConversationEvent]:
        """Messages (and state changes) as they are appended, as `async for`: from from_seq
        first when given; a drop resumes after the last message seen; a `ConversationDeleted`
        ends it."""
        return AsyncEventStream(
            self._http,
            self._path(conversation, "stream"),
            conversation_event,
            params=query(from_seq=from_seq),
            last_event_id=last_event_id,
            is_last=is_conversation_end,
        )

    def _path(self, conversation: str, *rest: str) -> str:
        return keyed_path("conversations", self._scope, conversation, *rest)
