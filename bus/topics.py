"""Topics: create, list, look up and delete bus topics and the Kafka topics behind them.

A create first creates the Kafka topic, then appends a command to the topic-commands
log; the worker owning that log writes the metadata table, and this worker answers once
its own copy of the global table shows the outcome. So a 201 means: the Kafka topic
exists and every worker will see the metadata (this one already does).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bus.context import BusContext
from bus.errors import TopicExists, TopicNotFound, Unprocessable
from bus.kafka import RECORD_OVERHEAD_BYTES
from bus.models.topics import Topic, TopicCommand, TopicSpec, kafka_topic_name
from bus.types import TopicId
from bus.waits import wait_until
from tables.topics import all_topics, get_topic
from workers.topics import topic_commands

log = logging.getLogger(__name__)


def require_topic(topic_id: TopicId) -> Topic:
    topic = get_topic(topic_id)
    if topic is None:
        raise TopicNotFound(f"Topic {topic_id} does not exist", {"topic": topic_id})
    return topic


def list_topics(namespace: str | None = None, tenant: str | None = None) -> list[Topic]:
    return [
        t
        for t in all_topics()
        if (namespace is None or t.namespace == namespace) and (tenant is None or t.tenant == tenant)
    ]


async def create_topic(ctx: BusContext, spec: TopicSpec) -> Topic:
    """Create a topic; TopicExists (409) if it exists, also when a concurrent create wins."""
    s = ctx.settings
    if get_topic(spec.topic_id) is not None:
        raise TopicExists(f"Topic {spec.topic_id} already exists", {"topic": spec.topic_id})
    replication = spec.replication_factor or s.replication_factor
    brokers = await ctx.gateway.broker_count()
    if replication > brokers:
        raise Unprocessable(
            "replication_factor is larger than the number of brokers",
            [{"path": "replication_factor", "type": "too_large", "message": f"cluster has {brokers} brokers"}],
        )
    topic = Topic(
        namespace=spec.namespace,
        tenant=spec.tenant,
        name=spec.name,
        kafka_topic=kafka_topic_name(s.prefix, spec.namespace, spec.tenant, spec.name),
        partitions=spec.partitions or s.default_partitions,
        replication_factor=replication,
        retention_ms=spec.retention_ms,
        retention_bytes=spec.retention_bytes,
        description=spec.description,
        labels=spec.labels,
        created_at=datetime.now(UTC),
    )
    created = await ctx.gateway.create_topic(
        topic.kafka_topic, topic.partitions, topic.replication_factor, kafka_configs(ctx, topic)
    )
    if not created:
        # Left by a create whose metadata command never landed: take it over.
        log.warning("kafka topic %s already existed; adopting it", topic.kafka_topic)
    await send_command(TopicCommand(op="create", topic_id=topic.topic_id, topic=topic))
    await wait_until(lambda: get_topic(topic.topic_id) is not None, s.timing.command_timeout,
                     f"topic {topic.topic_id} to be recorded")
    if get_topic(topic.topic_id) != topic:
        raise TopicExists(f"Topic {spec.topic_id} was created concurrently", {"topic": spec.topic_id})
    return topic


async def delete_topic(ctx: BusContext, topic_id: TopicId) -> Topic:
    """Delete the Kafka topic and its metadata. Its records are gone for good."""
    topic = require_topic(topic_id)
    await ctx.gateway.delete_topic(topic.kafka_topic)
    await send_command(TopicCommand(op="delete", topic_id=topic_id))
    await wait_until(lambda: get_topic(topic_id) is None, ctx.settings.timing.command_timeout,
                     f"topic {topic_id} to be removed")
    return topic


def kafka_configs(ctx: BusContext, topic: Topic) -> dict[str, str]:
    configs = {"max.message.bytes": str(ctx.settings.limits.max_payload_bytes + RECORD_OVERHEAD_BYTES)}
    if topic.retention_ms is not None:
        configs["retention.ms"] = str(topic.retention_ms)
    if topic.retention_bytes is not None:
        configs["retention.bytes"] = str(topic.retention_bytes)
    if topic.replication_factor > 1:
        configs["min.insync.replicas"] = str(min(2, topic.replication_factor))
    return configs


async def send_command(command: TopicCommand) -> None:
    sent = await topic_commands.send(key=command.topic_id, value=command.model_dump_json().encode())
    await sent
