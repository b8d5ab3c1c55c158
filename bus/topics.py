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
from bus.errors import Timeout, TopicExists, TopicNotFound, Unprocessable
from bus.kafka import RECORD_OVERHEAD_BYTES
from bus.models.topics import Topic, TopicCommand, TopicSpec, kafka_topic_name
from bus.types import TopicId
from bus.waits import wait_until
from tables.topics import all_topics, applied_offset, get_topic
from workers.topics import topic_commands

log = logging.getLogger(__name__)


async def require_topic(ctx: BusContext, topic_id: TopicId) -> Topic:
    """The topic, or TopicNotFound (404).

    Another worker's create reaches this worker's copy of the table a few ms after it
    answered 201, so a miss waits out a short grace period before it counts: a client
    may create through one worker and publish through another at once.
    """
    topic = get_topic(topic_id)
    if topic is None:
        grace = ctx.settings.timing.metadata_grace
        try:
            await wait_until(lambda: get_topic(topic_id) is not None, grace, "topic metadata")
        except Timeout:
            raise TopicNotFound(f"Topic {topic_id} does not exist", {"topic": topic_id}) from None
        topic = get_topic(topic_id)
        assert topic is not None
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
    """Append a command and wait until this worker's table reflects it."""
    sent = await topic_commands.send(key=command.topic_id, value=command.model_dump_json().encode())
    offset = (await sent).offset
    await wait_until(
        lambda: applied_offset() >= offset,
        ctx.settings.timing.command_timeout,
        f"topic command for {command.topic_id} to apply",
    )
