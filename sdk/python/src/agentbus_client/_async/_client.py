"""AsyncClient: the whole bus API over one connection pool, grouped by primitive."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import httpx
from pydantic import JsonValue
from typing_extensions import Self

from agentbus_client._async._admin import AsyncKeys, AsyncRules, AsyncSchemas, AsyncSystem, AsyncTopics
from agentbus_client._async._agents import AsyncAgents, AsyncConversations
from agentbus_client._async._http import AsyncHTTP
from agentbus_client._async._messaging import AsyncPublisher, AsyncSubscriptions
from agentbus_client._async._streams import AsyncStreams
from agentbus_client._async._tools import AsyncApprovals, AsyncToolCalls
from agentbus_client._config import RetryPolicy, Timeouts
from agentbus_client._shared import Scope
from agentbus_client.models.publish import Envelope, PublishResult


class AsyncClient:
    """The bus, as one tenant (and, for agent calls, one agent) sees it.

        async with AsyncClient("http://127.0.0.1:6066", key, namespace="demo", tenant="acme",
                               agent_id="planner") as bus:
            await bus.publish("orders", {"total": 42})
            async for record in bus.topics.subscribe("orders", start="earliest"):
                ...

    base_url may be a list of the fleet's workers: a connection failure moves to the next.
    Resources: topics, subscriptions, schemas, keys, rules, agents, conversations,
    tool_calls, streams, approvals, system. with_scope() gives a client for another tenant
    or agent that shares this one's connections.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        api_key: str | None = None,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        agent_id: str | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        http = AsyncHTTP(
            urls,
            api_key,
            timeouts=timeouts or Timeouts(),
            retry=retry or RetryPolicy(),
            transport=transport,
            headers=headers,
        )
        self._attach(http, Scope(namespace, tenant, agent_id))

    def _attach(self, http: AsyncHTTP, scope: Scope) -> None:
        self._http = http
        self.scope = scope
        self.topics = AsyncTopics(http, scope)
        self.subscriptions = AsyncSubscriptions(http, scope)
        self.schemas = AsyncSchemas(http, scope)
        self.keys = AsyncKeys(http, scope)
        self.rules = AsyncRules(http, scope)
        self.agents = AsyncAgents(http, scope)
        self.conversations = AsyncConversations(http, scope)
        self.tool_calls = AsyncToolCalls(http, scope)
        self.streams = AsyncStreams(http, scope)
        self.approvals = AsyncApprovals(http, scope)
        self.system = AsyncSystem(http, scope)
        self._publisher = AsyncPublisher(http, scope)

    def with_scope(
        self, *, namespace: str | None = None, tenant: str | None = None, agent_id: str | None = None
    ) -> Self:
        """A client for another tenant or agent (unchanged parts kept), on the same connections.
        Closing either closes both."""
        scope = Scope(
            namespace if namespace is not None else self.scope.namespace,
            tenant if tenant is not None else self.scope.tenant,
            agent_id if agent_id is not None else self.scope.agent_id,
        )
        other = object.__new__(type(self))
        other._attach(self._http, scope)
        return other

    @property
    def base_url(self) -> str:
        """The worker requests go to now."""
        return self._http.base_url

    async def publish(
        self,
        topic: str,
        payload: JsonValue,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
    ) -> PublishResult:
        """Publish one record to a topic of this tenant (or namespace/tenant/name).

        message_id defaults to a fresh id made here: a retry after a lost answer repeats it."""
        return await self._publisher.publish(
            topic, payload, key=key, headers=headers, message_id=message_id, content_type=content_type
        )

    async def publish_batch(self, records: Sequence[Envelope | dict[str, Any]]) -> list[PublishResult]:
        """Publish several records in one request, all or none; results in order."""
        return await self._publisher.publish_batch(records)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
