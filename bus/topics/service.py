"""Topics: create, list, look up and delete bus topics and the Kafka topics behind them.

A create first creates the Kafka topic, then appends a command to the topic-commands
log; the worker owning that log writes the metadata table, and this worker answers once
its own copy of the global table shows the outcome. So a 201 means: the Kafka topic
exists and every worker will see the metadata (this one already does).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bus.errors import TopicExists, TopicNotFound, Unprocessable
from bus.kafka.context import BusContext
from bus.kafka.gateway import RECORD_OVERHEAD_BYTES
from bus.schemas.service import find_version
from bus.state.command_log import catch_up, send_and_wait
from bus.topics.models import SchemaBinding, Topic, TopicCommand, TopicSpec, kafka_topic_name
from bus.topics.store import all_topics, get_topic
from bus.types import TopicId
from tables.topics import topic_commands
from tables.topics import topics as topics_table

__all__ = ["bind_schema", "create_topic", "delete_topic", "list_topics", "require_topic"]

log = logging.getLogger(__name__)


async def require_topic(ctx: BusContext, topic_id: TopicId) -> Topic:
    """The topic, or TopicNotFound (404).

    A miss is only believed once this worker's copy has caught up with the command log,
    so a topic created through another worker a moment ago is found here too.
    """
    topic = get_topic(topic_id)
    if topic is None:
        await catch_up(ctx, topic_commands, topics_table)
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
    if spec.schema_binding is not None:
        await check_binding(ctx, spec.namespace, spec.tenant, spec.schema_binding)
    replication = spec.replication_factor or s.replication_factor
    brokers = await ctx.gateway.broker_count()
    if replication > brokers:
        raise Unprocessable(
            "replication_factor is larger than the number of brokers",
            [
                {
                    "path": "replication_factor",
                    "type": "too_large",
                    "message": f"cluster has {brokers} brokers",
                }
            ],
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
        schema_binding=spec.schema_binding,
    )
    created = await ctx.gateway.create_topic(
        topic.kafka_topic, topic.partitions, topic.replication_factor, kafka_configs(ctx, topic)
    )
    if not created and get_topic(topic.topic_id) is None:
        # Left by a create whose metadata command never landed: take it over.
        log.warning("kafka topic %s already existed; adopting it", topic.kafka_topic)
    # The local table may lag another worker's create or delete by a few ms, so the
    # command log decides: the first create in it wins, and we read the outcome once
    # our own command has been applied here.
    await send_command(ctx, TopicCommand(op="create", topic_id=topic.topic_id, topic=topic))
    if get_topic(topic.topic_id) != topic:
        raise TopicExists(f"Topic {spec.topic_id} already exists", {"topic": spec.topic_id})
    return topic


async def delete_topic(ctx: BusContext, topic_id: TopicId) -> Topic:
    """Delete the Kafka topic and its metadata. Its records are gone for good."""
    topic = await require_topic(ctx, topic_id)
    await ctx.gateway.delete_topic(topic.kafka_topic)
    await send_command(ctx, TopicCommand(op="delete", topic_id=topic_id))
    return topic


async def bind_schema(ctx: BusContext, topic_id: TopicId, binding: SchemaBinding | None) -> Topic:
    """Bind a topic to a schema subject (None unbinds); later publishes are validated."""
    topic = await require_topic(ctx, topic_id)
    if binding is not None:
        await check_binding(ctx, topic.namespace, topic.tenant, binding)
    updated = topic.model_copy(update={"schema_binding": binding})
    await send_command(ctx, TopicCommand(op="update", topic_id=topic_id, topic=updated))
    found = get_topic(topic_id)
    if found is None:
        raise TopicNotFound(f"Topic {topic_id} was deleted meanwhile", {"topic": topic_id})
    return found


async def check_binding(ctx: BusContext, namespace: str, tenant: str, binding: SchemaBinding) -> None:
    """SubjectNotFound / VersionNotFound (404) unless the binding resolves in this tenant."""
    await find_version(ctx, namespace, tenant, binding.subject, binding.version)


def kafka_configs(ctx: BusContext, topic: Topic) -> dict[str, str]:
    configs = {"max.message.bytes": str(ctx.settings.limits.max_payload_bytes + RECORD_OVERHEAD_BYTES)}
    if topic.retention_ms is not None:
        configs["retention.ms"] = str(topic.retention_ms)
    if topic.retention_bytes is not None:
        configs["retention.bytes"] = str(topic.retention_bytes)
    if topic.replication_factor > 1:
        configs["min.insync.replicas"] = str(min(2, topic.replication_factor))
    return configs


async def send_command(ctx: BusContext, command: TopicCommand) -> None:
    await send_and_wait(ctx, topic_commands, command.topic_id, command, topics_table)
