"""Subscriptions: create, list, look up and delete subscription metadata.

A subscription names a source topic, a dead-letter topic and a Kafka consumer group;
delivering its records (pull, ack, nack, redrive) is the dispatcher's business. A create
validates everything first, resolves `start` to explicit offsets, makes sure the
dead-letter topic exists, then appends a command to the subscription-commands log; the
worker owning that log writes the metadata table, and this worker answers once its own
copy shows the outcome. So a 201 means: the dead-letter topic exists and every worker
will see the subscription (this one already does).
"""

from __future__ import annotations

from datetime import UTC, datetime

from agentbus_client.models.topics import Topic, TopicSpec, topic_id

from bus.errors import SubscriptionExists, SubscriptionNotFound, TenantForbidden, TopicExists, Unprocessable
from bus.http import access
from bus.http.access import Action, Principal
from bus.kafka.context import BusContext
from bus.state.command_log import catch_up, send_and_wait
from bus.subscriptions.models import Subscription, SubscriptionCommand, SubscriptionSpec, subscription_key
from bus.subscriptions.store import all_subscriptions, get_subscription
from bus.topics.service import create_topic, require_topic
from bus.topics.store import get_topic
from bus.types import TopicId
from bus.wire import NAME_RE
from tables.subscriptions import subscription_commands
from tables.subscriptions import subscriptions as subscriptions_table
from tables.topics import topic_commands
from tables.topics import topics as topics_table

__all__ = [
    "authorize",
    "consumer_group",
    "create_subscription",
    "dead_letter_name",
    "delete_subscription",
    "find_topic",
    "list_subscriptions",
    "require_subscription",
    "send_command",
    "source_topic_name",
]


async def require_subscription(ctx: BusContext, key: str) -> Subscription:
    """The subscription, or SubscriptionNotFound (404).

    A miss is only believed once this worker's copy has caught up with the command log,
    so a subscription created through another worker a moment ago is found here too.
    """
    sub = get_subscription(key)
    if sub is None:
        await catch_up(ctx, subscription_commands, subscriptions_table)
        sub = get_subscription(key)
    if sub is None:
        raise SubscriptionNotFound(f"Subscription {key} does not exist", {"subscription": key})
    return sub


def list_subscriptions(
    namespace: str | None = None, tenant: str | None = None, topic: str | None = None
) -> list[Subscription]:
    """This worker's copy: eventually consistent with creates through other workers.
    Agents' inboxes are left out (they are listed as agents)."""
    return [
        s
        for s in all_subscriptions()
        if s.inbox_of is None
        and (namespace is None or s.namespace == namespace)
        and (tenant is None or s.tenant == tenant)
        and (topic is None or s.topic == topic)
    ]


def source_topic_name(spec: SubscriptionSpec) -> str:
    """The source topic's name: spec.topic is a name, or namespace/tenant/name of the
    spec's own tenant (TenantForbidden, 403, for any other; 422 if unreadable)."""
    parts = spec.topic.split("/")
    if len(parts) == 3:
        if (parts[0], parts[1]) != (spec.namespace, spec.tenant):
            raise TenantForbidden(
                "cross-tenant subscriptions are refused",
                {"topic": spec.topic, "subscription": subscription_key(spec.namespace, spec.tenant, spec.id)},
            )
        parts = parts[2:]
    if len(parts) != 1 or not NAME_RE.match(parts[0]):
        raise Unprocessable(
            "topic must be a topic name or namespace/tenant/name",
            [{"path": "topic", "type": "invalid_topic", "message": "expected name or namespace/tenant/name"}],
        )
    return parts[0]


def dead_letter_name(spec: SubscriptionSpec, source: str) -> str:
    """spec.dead_letter_topic or '{id}-dlq'; never the source topic itself (422)."""
    name = spec.dead_letter_topic or f"{spec.id}-dlq"
    if name == source:
        raise Unprocessable(
            "The dead-letter topic cannot be the source topic",
            [{"path": "dead_letter_topic", "type": "same_as_topic", "message": "must differ from topic"}],
        )
    return name


async def create_subscription(ctx: BusContext, spec: SubscriptionSpec) -> Subscription:
    """Create a subscription; SubscriptionExists (409) if the id is taken, also when a
    concurrent create wins. Every refusal but that race is decided before anything is
    written (no dead-letter topic, no command)."""
    key = subscription_key(spec.namespace, spec.tenant, spec.id)
    source_name = source_topic_name(spec)
    dlq_name = dead_letter_name(spec, source_name)
    await refuse_if_taken(ctx, key)
    source = await require_topic(ctx, topic_id(spec.namespace, spec.tenant, source_name))
    dlq = await find_topic(ctx, topic_id(spec.namespace, spec.tenant, dlq_name))
    created_at = datetime.now(UTC)
    sub = Subscription(
        namespace=spec.namespace,
        tenant=spec.tenant,
        id=spec.id,
        topic=source.name,
        start=spec.start,
        start_offsets=await ctx.gateway.resolve_offsets(source.kafka_topic, source.partitions, spec.start),
        ack_mode=spec.ack_mode,
        ack_deadline_ms=spec.ack_deadline_ms,
        max_deliveries=spec.max_deliveries,
        redelivery_backoff_ms=spec.redelivery_backoff_ms,
        redelivery_backoff_max_ms=spec.redelivery_backoff_max_ms,
        dead_letter_topic=dlq_name,
        filter=spec.filter,
        labels=spec.labels,
        description=spec.description,
        consumer_group=consumer_group(ctx.settings.prefix, spec, created_at),
        created_at=created_at,
    )
    if dlq is None:
        # If the create below loses a race to another create of this id, the dead-letter
        # topic made here stays behind as an ordinary bus topic: accepted, it is harmless
        # and the winner of the race (same default name) usually uses it anyway.
        await create_dead_letter_topic(ctx, source, dlq_name, key)
    # The local table may lag another worker's create or delete by a few ms, so the
    # command log decides: the first create in it wins, and we read the outcome once
    # our own command has been applied here.
    await send_command(ctx, SubscriptionCommand(op="create", key=key, subscription=sub))
    if get_subscription(key) != sub:
        raise SubscriptionExists(f"Subscription {key} already exists", {"subscription": key})
    return sub


async def delete_subscription(ctx: BusContext, key: str) -> Subscription:
    """Delete the metadata. The dead-letter topic and the consumer group are left to the
    delivery side (the dead letters stay readable as an ordinary topic)."""
    sub = await require_subscription(ctx, key)
    await send_command(ctx, SubscriptionCommand(op="delete", key=key))
    return sub


def authorize(who: Principal, sub: Subscription, action: Action) -> None:
    """Raise unless the key may do action on the subscription: its rights on the source
    topic (consuming a subscription is reading its topic)."""
    access.require(who, action, sub.namespace, sub.tenant, sub.topic)


async def refuse_if_taken(ctx: BusContext, key: str) -> None:
    """SubscriptionExists (409) before anything is written, when the id is plainly taken.

    A hit is re-checked on a caught-up copy: it may be a delete this copy lags behind."""
    if get_subscription(key) is None:
        return
    await catch_up(ctx, subscription_commands, subscriptions_table)
    if get_subscription(key) is not None:
        raise SubscriptionExists(f"Subscription {key} already exists", {"subscription": key})


async def find_topic(ctx: BusContext, tid: TopicId) -> Topic | None:
    """The topic, or None once this worker's copy has caught up with the command log."""
    topic = get_topic(tid)
    if topic is None:
        await catch_up(ctx, topic_commands, topics_table)
        topic = get_topic(tid)
    return topic


async def create_dead_letter_topic(ctx: BusContext, source: Topic, name: str, key: str) -> Topic:
    """A bus topic of the source's tenant and partition count, for the dead letters."""
    spec = TopicSpec(
        namespace=source.namespace,
        tenant=source.tenant,
        name=name,
        partitions=source.partitions,
        description=f"Dead letters of subscription {key}",
    )
    try:
        return await create_topic(ctx, spec)
    except TopicExists:  # created meanwhile (another request): use it
        return await require_topic(ctx, spec.topic_id)


def consumer_group(prefix: str, spec: SubscriptionSpec, created_at: datetime) -> str:
    """The Kafka consumer group; created_at (unix ms) makes a re-created subscription
    start from its own start_offsets, never from offsets its predecessor committed."""
    created_ms = int(created_at.timestamp() * 1000)
    return f"{prefix}.sub.{spec.namespace}.{spec.tenant}.{spec.id}.{created_ms}"


async def send_command(ctx: BusContext, command: SubscriptionCommand) -> None:
    await send_and_wait(ctx, subscription_commands, command.key, command, subscriptions_table)
