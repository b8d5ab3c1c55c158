"""Dead letters: list a subscription's, and send chosen ones back to the source, once each.

The dead-letter topic is a bus topic; each dead letter keeps the original key, value and
headers plus the bus.dlq.* origin headers. A redrive writes, in one Kafka transaction,
a copy of each chosen dead letter to the source topic and a marker record to the
dead-letter topic (header bus.dlq.redrive_of = the dead letter's id). The topic itself
therefore says what was redriven: a later redrive skips those, and redrives of one
subscription run one at a time on its owner, so no dead letter is sent back twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentbus_client.models.topics import Topic, topic_id
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from bus import headers as h
from bus.errors import DeadLetterNotFound
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord, guarded
from bus.subscribe.service import delivered
from bus.subscriptions.dispatcher import (
    DLQ_DELIVERY_COUNT,
    DLQ_FIRST_DELIVERY,
    DLQ_LAST_DELIVERY,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_PREFIX,
    DLQ_REASON,
    DLQ_SUBSCRIPTION,
    DLQ_TOPIC,
    Dispatcher,
)
from bus.subscriptions.models import DeadLetter, DeadLetterOrigin, Subscription
from bus.topics.service import require_topic
from bus.wire import parse_whole

__all__ = ["list_dead_letters", "redrive"]

REDRIVE_OF = "bus.dlq.redrive_of"
REDRIVEN_FROM = "bus.redriven_from"  # on the copy in the source topic: dead-letter topic and id


@dataclass
class DeadLetters:
    letters: list[tuple[str, ConsumerRecord[bytes, bytes]]]  # (id, record), oldest first per partition
    redriven: set[str]


async def read_dead_letters(ctx: BusContext, sub: Subscription) -> tuple[Topic, DeadLetters]:
    """Every dead letter of sub in its dead-letter topic, and which were redriven."""
    topic = await require_topic(ctx, topic_id(sub.namespace, sub.tenant, sub.dead_letter_topic))
    consumer = ctx.gateway.new_reader(isolation_level="read_committed")
    await guarded(consumer.start())
    found = DeadLetters([], set())
    try:
        tps = [TopicPartition(topic.kafka_topic, p) for p in range(topic.partitions)]
        consumer.assign(tps)
        firsts = await guarded(consumer.beginning_offsets(tps))
        ends = await guarded(consumer.end_offsets(tps))
        for tp in tps:
            consumer.seek(tp, firsts[tp])
        for tp in tps:
            while await guarded(consumer.position(tp)) < ends[tp]:
                batch = await guarded(consumer.getmany(tp, timeout_ms=500, max_records=1000))
                for record in batch.get(tp, []):
                    collect(found, sub, record)
    finally:
        await consumer.stop()
    return topic, found


def collect(found: DeadLetters, sub: Subscription, record: ConsumerRecord[bytes, bytes]) -> None:
    headers = h.from_kafka(record.headers)
    if headers.get(DLQ_SUBSCRIPTION) != sub.key:
        return
    if REDRIVE_OF in headers:
        found.redriven.add(headers[REDRIVE_OF])
    else:
        found.letters.append((f"{record.partition}:{record.offset}", record))


def as_dead_letter(
    topic: Topic, letter_id: str, record: ConsumerRecord[bytes, bytes], redriven: bool
) -> DeadLetter:
    headers = h.from_kafka(record.headers)
    origin = DeadLetterOrigin(
        topic=headers.get(DLQ_TOPIC, ""),
        partition=_int(headers.get(DLQ_PARTITION)) or 0,
        offset=_int(headers.get(DLQ_OFFSET)) or 0,
        subscription=headers.get(DLQ_SUBSCRIPTION, ""),
        reason=headers.get(DLQ_REASON, ""),
        delivery_count=_int(headers.get(DLQ_DELIVERY_COUNT)) or 0,
        first_delivery_at=_int(headers.get(DLQ_FIRST_DELIVERY)),
        last_delivery_at=_int(headers.get(DLQ_LAST_DELIVERY)),
    )
    return DeadLetter(
        dead_letter_id=letter_id, origin=origin, record=delivered(topic, record), redriven=redriven
    )


def _int(text: str | None) -> int | None:
    return parse_whole(text)


async def list_dead_letters(
    ctx: BusContext, sub: Subscription, limit: int, after: str | None
) -> list[DeadLetter]:
    topic, found = await read_dead_letters(ctx, sub)
    letters = found.letters
    if after is not None:
        ids = [i for i, _ in letters]
        letters = letters[ids.index(after) + 1 :] if after in ids else letters
    return [as_dead_letter(topic, i, r, i in found.redriven) for i, r in letters[:limit]]


async def redrive(
    ctx: BusContext, dispatcher: Dispatcher, ids: list[str] | None
) -> tuple[list[str], list[str]]:
    """Send chosen dead letters (all when ids is None) back; (redriven, skipped as done before)."""
    sub = dispatcher.sub
    async with dispatcher.redrive_lock:
        topic, found = await read_dead_letters(ctx, sub)
        by_id = dict(found.letters)
        wanted = list(by_id) if ids is None else list(dict.fromkeys(ids))
        unknown = [i for i in wanted if i not in by_id]
        if unknown:
            raise DeadLetterNotFound(
                f"{len(unknown)} dead letter id(s) are not dead letters of {sub.key}; nothing was redriven",
                {"unknown": unknown[:100]},
            )
        chosen = [i for i in wanted if i not in found.redriven]
        if chosen:
            records = [r for i in chosen for r in redrive_records(dispatcher, topic, i, by_id[i])]
            await dispatcher.writer.append([], records)
        return chosen, [i for i in wanted if i in found.redriven]


def redrive_records(
    dispatcher: Dispatcher, dlq: Topic, letter_id: str, record: ConsumerRecord[bytes, bytes]
) -> list[OutgoingRecord]:
    original = [(k, v) for k, v in record.headers if not k.startswith(DLQ_PREFIX) and k != REDRIVEN_FROM]
    copy = OutgoingRecord(
        dispatcher.topic.kafka_topic,
        record.value or b"",
        record.key,
        [*original, (REDRIVEN_FROM, f"{dlq.topic_id}@{letter_id}".encode())],
    )
    marker = OutgoingRecord(
        dlq.kafka_topic,
        b"",
        None,
        h.to_kafka({DLQ_SUBSCRIPTION: dispatcher.sub.key, REDRIVE_OF: letter_id}),
    )
    return [copy, marker]
