"""Subscribe: read a topic from a position and resume exactly where a client left off.

A reader is a group-less consumer owned by one SSE connection; it commits nothing, so
the position lives with the client. Each event id is the cursor *after* that event:
for every partition, the next offset to read. Resuming with Last-Event-ID therefore
neither skips nor repeats a record, whichever partition the last event came from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from agentbus_client.models.publish import JSON_CONTENT_TYPE, DeliveredRecord
from agentbus_client.models.topics import Topic
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic_core import from_json, to_json

from bus import headers as h
from bus.errors import InvalidParameter
from bus.kafka.gateway import KafkaGateway, guarded
from bus.wire import parse_whole

__all__ = [
    "TopicReader",
    "decode_cursor",
    "delivered",
    "delivered_fields",
    "delivered_json",
    "encode_cursor",
    "parse_start",
]

Cursor = dict[int, int]  # partition -> next offset to read
MAX_PARTITION = 100_000  # Kafka allows far fewer partitions per topic
Start = Literal["earliest", "latest"] | int | Cursor


def encode_cursor(cursor: Cursor) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(cursor.items()))


def decode_cursor(text: str) -> Cursor:
    cursor: Cursor = {}
    for item in text.split(","):
        partition, _, offset = item.partition(":")
        p, o = parse_whole(partition, MAX_PARTITION), parse_whole(offset)
        if p is None or o is None or p in cursor:
            raise InvalidParameter("Last-Event-ID is not a cursor this bus issued", {"value": text[:200]})
        cursor[p] = o
    return cursor


def parse_start(from_param: str | None, last_event_id: str | None) -> Start:
    """Last-Event-ID wins over from=; from= is earliest, latest (default) or unix ms."""
    if last_event_id:
        return decode_cursor(last_event_id)
    if from_param in (None, "", "latest"):
        return "latest"
    if from_param == "earliest":
        return "earliest"
    assert from_param is not None
    at = parse_whole(from_param)
    if at is not None:
        return at
    raise InvalidParameter("from must be earliest, latest or a unix time in ms", {"from": from_param[:100]})


@dataclass
class TopicReader:
    """Reads every partition of one topic from a start position."""

    consumer: AIOKafkaConsumer
    topic: Topic
    cursor: Cursor

    @classmethod
    async def open(cls, gateway: KafkaGateway, topic: Topic, start: Start) -> TopicReader:
        # Committed records only: approved and deduplicated publishes are written in
        # transactions, and one a fenced owner started never commits.
        consumer = gateway.new_reader(isolation_level="read_committed")
        await guarded(consumer.start())
        try:
            partitions = [TopicPartition(topic.kafka_topic, p) for p in range(topic.partitions)]
            consumer.assign(partitions)
            await seek(consumer, partitions, start)
            cursor = {tp.partition: await guarded(consumer.position(tp)) for tp in partitions}
        except BaseException:
            await consumer.stop()
            raise
        return cls(consumer, topic, cursor)

    async def next_batch(self, timeout_ms: int) -> list[ConsumerRecord[bytes, bytes]]:
        batches = await guarded(self.consumer.getmany(timeout_ms=timeout_ms, max_records=500))
        return [record for records in batches.values() for record in records]

    async def close(self) -> None:
        await self.consumer.stop()


async def seek(consumer: AIOKafkaConsumer, partitions: list[TopicPartition], start: Start) -> None:
    """Explicit offsets only: aiokafka's seek_to_beginning/end can lose a race with a
    group-less reader's own offset reset, so positions are looked up and set here."""
    if start == "earliest":
        firsts = await guarded(consumer.beginning_offsets(partitions))
        for tp in partitions:
            consumer.seek(tp, firsts[tp])
    elif start == "latest":
        ends = await guarded(consumer.end_offsets(partitions))
        for tp in partitions:
            consumer.seek(tp, ends[tp])
    elif isinstance(start, int):
        found = await guarded(consumer.offsets_for_times({tp: start for tp in partitions}))
        ends = await guarded(consumer.end_offsets(partitions))
        for tp in partitions:
            hit = found.get(tp)
            consumer.seek(tp, hit.offset if hit is not None else ends[tp])
    else:
        firsts = await guarded(consumer.beginning_offsets(partitions))
        for tp in partitions:
            consumer.seek(tp, start.get(tp.partition, firsts[tp]))


def delivered(topic: Topic, record: ConsumerRecord[bytes, bytes]) -> DeliveredRecord:
    # Built without validation: every field comes from Kafka and has its type already
    # (validating cost more than the rest of a delivery, found by bench/subscribe.py).
    return DeliveredRecord.model_construct(**delivered_fields(topic, record))


def delivered_json(fields: Mapping[str, Any]) -> bytes:
    """A delivered record's JSON from its fields (delivered_fields, in DeliveredRecord's
    order, plus Delivery's when leased), the JSON its wire model would render: orjson
    writes it ~5x cheaper than constructing and dumping the model, on the path of every
    record a reader or subscription gets. An integer beyond 64 bits goes through pydantic."""
    try:
        return orjson.dumps(fields)
    except TypeError:
        return to_json(fields)


def delivered_fields(topic: Topic, record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    headers = h.from_kafka(record.headers)
    content_type = headers.get(h.CONTENT_TYPE, JSON_CONTENT_TYPE)
    return {
        "topic": topic.topic_id,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": record.key.decode("utf-8", errors="replace") if record.key is not None else None,
        "message_id": headers.get(h.MESSAGE_ID),
        "content_type": content_type,
        "headers": headers,
        "payload": decode_payload(record.value or b"", content_type),
    }


def decode_payload(value: bytes, content_type: str) -> Any:
    if not content_type.startswith("text/"):
        try:  # pydantic's parser reads what json.loads reads (big integers exactly), 3x faster
            return from_json(value)
        except ValueError:
            pass  # invalid UTF-8, a lone surrogate: json.loads decides, on the replaced text
    text = value.decode("utf-8", errors="replace")
    if content_type.startswith("text/"):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
