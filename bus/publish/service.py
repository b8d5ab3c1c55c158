"""Publish: check envelopes, stamp the reserved headers, produce, return receipts.

Every envelope of a request is checked before the first record is produced, so a
rejected request (unknown topic, forged header, oversized payload) writes nothing.
The tenant's rules (bus.rules.engine) run first: they may deny, tag or reroute a record.
A request is answered only after the broker acknowledged every record (acks=all,
idempotent producer). A broker failure in the middle of a batch is reported as
kafka_unavailable (503, retriable); records acknowledged before it stay written.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from typing import Any

from agentbus_client.models.rules import RequireApprovalAction
from agentbus_client.models.schemas import Violation
from agentbus_client.models.topics import Topic
from pydantic_core import to_json

from bus import headers as h
from bus import metrics
from bus.approvals.service import park_record
from bus.errors import (
    BatchTooLarge,
    PayloadTooLarge,
    ReservedHeader,
    SchemaViolation,
    TopicNotFound,
    Unprocessable,
)
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord, Produced, partition_for
from bus.publish.dedup import Outcome, Produce
from bus.publish.models import JSON_CONTENT_TYPE, Envelope, PublishResult
from bus.rules.service import apply_rules, approval_gates, stored_rules
from bus.schemas.service import bound_schema
from bus.schemas.validation import BoundSchema, violations
from bus.topics.service import require_topic
from bus.types import TopicId

__all__ = ["Receipt", "encode_payload", "publish", "receipt"]


def encode_payload(envelope: Envelope) -> bytes:
    """A string with a text/* content type travels as is; anything else as compact JSON."""
    if envelope.content_type.startswith("text/") and isinstance(envelope.payload, str):
        return envelope.payload.encode()
    return to_json(envelope.payload)


def prepare(
    ctx: BusContext,
    envelope: Envelope,
    value: bytes,
    topics: dict[TopicId, Topic],
    bindings: dict[TopicId, BoundSchema | None],
    published_at: str,
    index: int | None = None,
) -> tuple[OutgoingRecord, str]:
    """Check one envelope and build its Kafka record; raises before anything is produced."""
    where = {} if index is None else {"index": index}
    limits = ctx.settings.limits
    forged = sorted(k for k in envelope.headers if h.is_reserved(k))
    if forged:
        raise ReservedHeader("Headers starting with 'bus.' are set by the bus", {**where, "headers": forged})
    if len(envelope.headers) > limits.max_headers:
        raise Unprocessable("Too many headers", {**where, "limit": limits.max_headers})
    topic = topics[envelope.topic]
    if len(value) > limits.max_payload_bytes:
        raise PayloadTooLarge(
            "The payload is over the size limit",
            {**where, "size": len(value), "limit": limits.max_payload_bytes},
        )
    message_id = envelope.message_id or os.urandom(16).hex()  # 128 random bits, like a UUID
    stamped = {
        **envelope.headers,
        h.MESSAGE_ID: message_id,
        h.NAMESPACE: topic.namespace,
        h.TENANT: topic.tenant,
        h.PUBLISHED_AT: published_at,
        h.CONTENT_TYPE: envelope.content_type,
    }
    bound = bindings[envelope.topic]
    if bound is not None:
        stamped[h.SCHEMA_SUBJECT] = bound.version.subject
        stamped[h.SCHEMA_VERSION] = str(bound.version.version)
        stamped[h.SCHEMA_ID] = bound.version.schema_id
    key = envelope.key.encode() if envelope.key is not None else None
    return OutgoingRecord(topic.kafka_topic, value, key, h.to_kafka(stamped)), message_id


def check_payloads(
    envelopes: Sequence[Envelope], bindings: dict[TopicId, BoundSchema | None], single: bool
) -> None:
    """SchemaViolation (422) naming every failing record, before anything is produced."""
    failures: list[dict[str, Any]] = []
    for index, envelope in enumerate(envelopes):
        bound = bindings[envelope.topic]
        if bound is None:
            continue
        if envelope.content_type != JSON_CONTENT_TYPE:
            found = [
                Violation(pointer="", keyword="content_type", message="a bound topic takes application/json")
            ]
        else:
            found = violations(bound.validator, envelope.payload)
        if found:
            failures.append(
                {
                    "index": index,
                    "subject": bound.version.subject,
                    "version": bound.version.version,
                    "schema_id": bound.version.schema_id,
                    "violations": [v.model_dump() for v in found],
                }
            )
    if not failures:
        return
    if single:
        failure = failures[0]
        del failure["index"]
        raise SchemaViolation("The payload does not match the topic's schema", failure)
    raise SchemaViolation(
        f"{len(failures)} of {len(envelopes)} records do not match their topic's schema; none was published",
        {"records": failures},
    )


async def resolve_topics(ctx: BusContext, envelopes: Sequence[Envelope]) -> dict[TopicId, Topic]:
    """Every topic the envelopes name; TopicNotFound names the first unknown one."""
    found: dict[TopicId, Topic] = {}
    for i, e in enumerate(envelopes):
        if e.topic not in found:
            try:
                found[e.topic] = await require_topic(ctx, e.topic)
            except TopicNotFound as exc:
                if len(envelopes) > 1:
                    exc.details = {**(exc.details or {}), "index": i}
                raise
    return found


Receipt = dict[str, Any]  # a PublishResult as the dict its JSON is rendered from


def receipt(
    topic: str,
    partition: int | None,
    offset: int | None,
    message_id: str,
    timestamp: int,
    approval: tuple[str, str] | None = None,
) -> Receipt:
    """A PublishResult (the wire model the route declares), built without validating it:
    every value comes from the bus itself. Its fields and their order are PublishResult's,
    so its JSON is PublishResult's JSON (tests/unit/test_publish_receipts.py pins both).
    Validating receipts cost a batch of 100 records ~0.3 ms; rendering these ~0.08 ms."""
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "message_id": message_id,
        "timestamp": timestamp,
        "status": "published" if approval is None else "awaiting_approval",
        "approval_id": None if approval is None else approval[0],
        "approval_digest": None if approval is None else approval[1],
    }


async def publish(
    ctx: BusContext,
    envelopes: Sequence[Envelope],
    kind: str,
    who: str = "",
    payloads: Sequence[bytes] | None = None,
    produce: Produce | None = None,
) -> list[Receipt]:
    """Publish envelopes in order; returns one receipt per envelope. A record a
    require_approval rule gates is parked instead (bus.approvals.service), not produced.
    payloads: the envelopes' encoded payloads, when the caller has them already (rules
    change topics and headers, never a payload, so one encoding serves the whole way).
    produce: how the records are produced (bus.publish.dedup's, with their receipts), when
    not by the gateway's shared producer; it is told which envelopes they are (indexes), and
    a receipt it answers (a repeated id's first) is the record's answer as it is."""
    limit = ctx.settings.limits.max_batch_records
    if len(envelopes) > limit:
        raise BatchTooLarge("Too many records in one batch", {"size": len(envelopes), "limit": limit})
    started = time.perf_counter()
    single = kind == "single"
    rules_of = stored_rules()  # one read of each tenant's rules serves the gates and the rules
    gates = approval_gates(envelopes, rules_of)
    envelopes = await apply_rules(ctx, envelopes, single, rules_of)  # may deny, tag or reroute records
    topics = await resolve_topics(ctx, envelopes)
    bindings = {topic_id: await bound_schema(ctx, topic) for topic_id, topic in topics.items()}
    check_payloads(envelopes, bindings, single)
    published_at = str(int(time.time() * 1000))
    values = payloads if payloads is not None else [encode_payload(e) for e in envelopes]
    prepared = [
        prepare(ctx, e, value, topics, bindings, published_at, None if single else i)
        for i, (e, value) in enumerate(zip(envelopes, values, strict=True))
    ]
    spread = random.randrange(1 << 16)  # unkeyed records of one request share a partition
    partitions = [
        partition_for(record.key, topics[e.topic].partitions, spread)
        for e, (record, _) in zip(envelopes, prepared, strict=True)
    ]
    now = [i for i, gate in enumerate(gates) if gate is None]
    records, where = [prepared[i][0] for i in now], [partitions[i] for i in now]
    outcomes: Sequence[Outcome] = []
    if now and produce is None:
        outcomes = await ctx.gateway.produce(records, where)
    elif now and produce is not None:
        outcomes = await produce(now, records, where)
    metrics.PUBLISH_LATENCY.labels(kind).observe(time.perf_counter() - started)
    written = [i for i, o in zip(now, outcomes, strict=True) if isinstance(o, Produced)]  # by this worker
    metrics.RECORDS_PUBLISHED.inc(len(written))
    metrics.count_published(envelopes[i].topic for i in written)
    results: dict[int, Receipt] = {
        i: o.model_dump()
        if isinstance(o, PublishResult)
        else receipt(envelopes[i].topic, o.partition, o.offset, prepared[i][1], o.timestamp)
        for i, o in zip(now, outcomes, strict=True)
    }
    for i, gate in enumerate(gates):
        if gate is not None:
            results[i] = await park(ctx, envelopes[i], prepared[i], partitions[i], gate, who, published_at)
    return [results[i] for i in range(len(envelopes))]


async def park(
    ctx: BusContext,
    envelope: Envelope,
    prepared: tuple[OutgoingRecord, str],
    partition: int,
    gate: RequireApprovalAction,
    who: str,
    published_at: str,
) -> Receipt:
    """Park a gated record for approval; its receipt names the approval and its digest."""
    record, message_id = prepared
    shown: dict[str, object] = {
        "topic": envelope.topic,
        "key": envelope.key,
        "payload": envelope.payload,
        "headers": envelope.headers,
        "content_type": envelope.content_type,
        "message_id": message_id,
        "reason": gate.reason,
    }
    approval_id, digest = await park_record(ctx, shown, record, partition, gate.ttl_ms, who)
    return receipt(envelope.topic, None, None, message_id, int(published_at), (approval_id, digest))
