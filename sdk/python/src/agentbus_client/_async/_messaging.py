"""Publishing, and subscriptions: durable consumer groups with per-record ack."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import JsonValue

from agentbus_client._async._admin import _Resource
from agentbus_client._async._events import AsyncEventStream
from agentbus_client._events import delivery
from agentbus_client._shared import Scope, body_of, dump, keyed_path, new_message_id, parse, path, query
from agentbus_client.models.publish import Batch, BatchResult, Envelope, PublishResult
from agentbus_client.models.subscriptions import (
    AckRequest,
    AckResponse,
    DeadLetter,
    DeadLetterList,
    Delivery,
    HeaderFilter,
    LagReport,
    NackRequest,
    NackResponse,
    PullRequest,
    PullResponse,
    RedriveRequest,
    RedriveResponse,
    ReleaseRequest,
    ReleaseResponse,
    SeekRequest,
    SeekResponse,
    Subscription,
    SubscriptionList,
    SubscriptionSpec,
)


def envelope(
    scope: Scope,
    topic: str,
    payload: JsonValue,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
    content_type: str | None = None,
) -> Envelope:
    """One record to publish; topic is a name of the client's tenant or namespace/tenant/name.

    message_id defaults to a fresh id made here, so a publish the client retries after a
    lost answer carries the same id (consumers can drop the repeat)."""
    return Envelope.model_validate(
        body_of(
            Envelope,
            topic="/".join(scope.key_of(topic)),
            payload=payload,
            key=key,
            headers=headers,
            message_id=message_id or new_message_id(),
            content_type=content_type,
        ),
        strict=False,
    )


class AsyncPublisher(_Resource):
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
        """Publish one record; the answer comes once every in-sync replica has it."""
        record = envelope(
            self._scope,
            topic,
            payload,
            key=key,
            headers=headers,
            message_id=message_id,
            content_type=content_type,
        )
        return parse(PublishResult, await self._http.request("POST", path("publish"), json=dump(record)))

    async def publish_batch(self, records: Sequence[Envelope | dict[str, Any]]) -> list[PublishResult]:
        """Publish records at once (all or none are accepted); results in the same order.

        A dict is an envelope's fields (topic, payload, key, headers, message_id,
        content_type) with the topic named as for publish."""
        envelopes = [r if isinstance(r, Envelope) else envelope(self._scope, **r) for r in records]
        body = dump(Batch(records=envelopes))
        return parse(
            BatchResult, await self._http.request("POST", path("publish", "batch"), json=body)
        ).results


class AsyncSubscriptions(_Resource):
    """Subscriptions of this tenant: create, pull or stream, ack/nack, seek, lag, dead letters."""

    async def create(
        self,
        subscription_id: str,
        topic: str,
        *,
        start: Literal["earliest", "latest"] | int | None = None,
        ack_mode: Literal["auto", "manual"] | None = None,
        ack_deadline_ms: int | None = None,
        max_deliveries: int | None = None,
        redelivery_backoff_ms: int | None = None,
        redelivery_backoff_max_ms: int | None = None,
        dead_letter_topic: str | None = None,
        filter: HeaderFilter | dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        description: str | None = None,
    ) -> Subscription:
        namespace, tenant, sub_id = self._scope.key_of(subscription_id)
        body = body_of(
            SubscriptionSpec,
            namespace=namespace,
            tenant=tenant,
            id=sub_id,
            topic=topic,
            start=start,
            ack_mode=ack_mode,
            ack_deadline_ms=ack_deadline_ms,
            max_deliveries=max_deliveries,
            redelivery_backoff_ms=redelivery_backoff_ms,
            redelivery_backoff_max_ms=redelivery_backoff_max_ms,
            dead_letter_topic=dead_letter_topic,
            filter=filter,
            labels=labels,
            description=description,
        )
        return parse(Subscription, await self._http.request("POST", path("subscriptions"), json=body))

    async def list(
        self, *, namespace: str | None = None, tenant: str | None = None, topic: str | None = None
    ) -> builtins.list[Subscription]:
        """Subscriptions the key may see, filtered by namespace, tenant and topic (its name)."""
        params = query(namespace=namespace, tenant=tenant, topic=topic)
        answer = await self._http.request("GET", path("subscriptions"), params=params)
        return parse(SubscriptionList, answer).subscriptions

    async def get(self, subscription_id: str) -> Subscription:
        return parse(Subscription, await self._http.request("GET", self._path(subscription_id)))

    async def delete(self, subscription_id: str) -> Subscription:
        return parse(Subscription, await self._http.request("DELETE", self._path(subscription_id)))

    async def pull(
        self,
        subscription_id: str,
        *,
        max_records: int | None = None,
        wait_ms: int | None = None,
        session: str | None = None,
    ) -> builtins.list[Delivery]:
        """Up to max_records deliveries, waiting up to wait_ms for the first. Ack each by its
        delivery_id before its deadline, or it is redelivered."""
        body = body_of(PullRequest, max_records=max_records, wait_ms=wait_ms, session=session)
        timeout = None if wait_ms is None else self._http.timeouts.read + wait_ms / 1000
        answer = await self._http.request(
            "POST", self._path(subscription_id, "pull"), json=body, timeout=timeout
        )
        return parse(PullResponse, answer).deliveries

    async def ack(self, subscription_id: str, delivery_ids: Sequence[str]) -> int:
        """Acknowledge deliveries (all or none); how many."""
        body = body_of(AckRequest, delivery_ids=list(delivery_ids))
        return parse(
            AckResponse, await self._http.request("POST", self._path(subscription_id, "ack"), json=body)
        ).acked

    async def nack(
        self,
        subscription_id: str,
        delivery_ids: Sequence[str],
        *,
        action: Literal["redeliver", "dead_letter"] | None = None,
        reason: str | None = None,
    ) -> NackResponse:
        """Give deliveries back: redelivered after the backoff, or dead-lettered now."""
        body = body_of(NackRequest, delivery_ids=list(delivery_ids), action=action, reason=reason)
        return parse(
            NackResponse, await self._http.request("POST", self._path(subscription_id, "nack"), json=body)
        )

    async def release(self, subscription_id: str, session: str) -> int:
        """Give back everything a pull session holds; how many."""
        body = body_of(ReleaseRequest, session=session)
        answer = await self._http.request("POST", self._path(subscription_id, "release"), json=body)
        return parse(ReleaseResponse, answer).released

    async def lag(self, subscription_id: str) -> LagReport:
        return parse(LagReport, await self._http.request("GET", self._path(subscription_id, "lag")))

    async def seek(
        self,
        subscription_id: str,
        *,
        position: Literal["earliest", "latest"] | None = None,
        timestamp_ms: int | None = None,
        offsets: dict[int, int] | None = None,
    ) -> dict[int, int]:
        """Move the subscription (exactly one of the three); the committed offsets after."""
        given_offsets = {str(p): o for p, o in offsets.items()} if offsets is not None else None
        body = body_of(SeekRequest, position=position, timestamp_ms=timestamp_ms, offsets=given_offsets)
        answer = await self._http.request("POST", self._path(subscription_id, "seek"), json=body)
        return parse(SeekResponse, answer).committed

    async def dead_letters(
        self, subscription_id: str, *, limit: int | None = None, after: str | None = None
    ) -> builtins.list[DeadLetter]:
        params = query(limit=limit, after=after)
        answer = await self._http.request("GET", self._path(subscription_id, "dead-letters"), params=params)
        return parse(DeadLetterList, answer).dead_letters

    async def redrive(
        self, subscription_id: str, dead_letter_ids: Sequence[str] | None = None, *, all: bool = False
    ) -> RedriveResponse:
        """Send dead letters back to the topic, once each: these ids, or all=True."""
        ids = list(dead_letter_ids) if dead_letter_ids is not None else None
        body = body_of(RedriveRequest, dead_letter_ids=ids, all=all or None)
        redrive_path = self._path(subscription_id, "dead-letters", "redrive")
        return parse(RedriveResponse, await self._http.request("POST", redrive_path, json=body))

    def events(self, subscription_id: str) -> AsyncEventStream[Delivery]:
        """Deliveries as Server-Sent Events, as `async for`. The connection is a session:
        when it drops, what it held unacked is redelivered, and the stream reconnects."""
        return AsyncEventStream(self._http, self._path(subscription_id, "events"), delivery)

    def _path(self, subscription_id: str, *rest: str) -> str:
        return keyed_path("subscriptions", self._scope, subscription_id, *rest)
