"""The one place the bus talks to Kafka directly (outside Faust's own machinery).

Every aiokafka error is translated into a bus error here; nothing above this module
catches KafkaError. The producer is idempotent with acks=all, so a record the broker
acknowledged is on every in-sync replica and a producer retry never duplicates it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.partitioner import murmur2
from aiokafka.structs import OffsetAndMetadata

from bus import metrics, tracing
from bus.errors import BusError, KafkaRejected, KafkaUnavailable, NotReady, TopicNotFound
from bus.settings import Settings

__all__ = [
    "RECORD_OVERHEAD_BYTES",
    "KafkaGateway",
    "OutgoingRecord",
    "Produced",
    "declare_topics",
    "guarded",
    "partition_for",
    "traced_produce",
    "translate",
    "with_trace",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Room for headers and framing on top of the payload limit.
RECORD_OVERHEAD_BYTES = 65_536
PING_EVERY_S = 1.0
READER_FETCH_MAX_BYTES = 1_048_576  # one fetch of a group-less reader, all partitions
READER_PARTITION_FETCH_BYTES = 262_144  # ... and of one partition (a larger record still comes)


@dataclass(frozen=True)
class Produced:
    partition: int
    offset: int
    timestamp: int


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]


def partition_for(key: bytes | None, partitions: int, spread: int) -> int:
    """Kafka's default partitioner for a keyed record (murmur2, as every Kafka client does),
    so a key lands where a plain producer would put it; `spread` places unkeyed records."""
    if key is None:
        return spread % partitions
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def traced_produce(
    records: Sequence[OutgoingRecord], transaction: int | None = None
) -> AbstractContextManager[object]:
    """The producer span of one produce, or of one transaction of state partition
    `transaction` (nothing when tracing is off)."""
    if not tracing.enabled():
        return tracing.span("")
    topics = sorted({r.topic for r in records})
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.destination.name": ",".join(topics),
        "messaging.batch.message_count": len(records),
    }
    if transaction is not None:
        attributes["agentbus.transaction.partition"] = transaction
    return tracing.span("kafka produce", tracing.SpanKind.PRODUCER, attributes=attributes)


def with_trace(records: Sequence[OutgoingRecord]) -> Sequence[OutgoingRecord]:
    """Records whose headers carry the current span's traceparent (the producer span's), so
    whoever consumes them continues the trace; the records as they are when tracing is off."""
    if not tracing.enabled():
        return records
    return [replace(r, headers=tracing.record_headers(r.headers)) for r in records]


def translate(exc: BaseException) -> BusError:
    """Map an aiokafka error to the bus error a caller sees."""
    if isinstance(exc, BusError):
        return exc
    if isinstance(exc, UnknownTopicOrPartitionError):
        return TopicNotFound("Kafka does not know this topic", {"kafka_error": type(exc).__name__})
    if isinstance(exc, (KafkaTimeoutError, KafkaConnectionError, asyncio.TimeoutError)):
        return KafkaUnavailable("Kafka did not answer in time", {"kafka_error": type(exc).__name__})
    if isinstance(exc, KafkaError) and not exc.retriable:
        return KafkaRejected(f"Kafka refused the request: {exc}", {"kafka_error": type(exc).__name__})
    return KafkaUnavailable(f"Kafka is unavailable: {exc}", {"kafka_error": type(exc).__name__})


async def guarded(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except (TimeoutError, KafkaError) as exc:
        raise translate(exc) from exc


class KafkaGateway:
    """A long-lived producer and admin client, shared by every request of a worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None  # answers end-offset questions
        self._pinged: tuple[float, bool] = (0.0, False)  # when the broker last answered a ping, and how
        # One request at a time queues record batches for a partition (see _send_batches).
        self._partition_turns: weakref.WeakValueDictionary[tuple[str, int], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @property
    def started(self) -> bool:
        return self._producer is not None and self._admin is not None

    async def start(self) -> None:
        s = self.settings
        timeout_ms = int(s.timing.kafka_request_timeout * 1000)
        producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=s.producer_linger_ms,
            max_request_size=s.limits.max_payload_bytes + RECORD_OVERHEAD_BYTES,
            max_batch_size=s.limits.max_payload_bytes + RECORD_OVERHEAD_BYTES,  # one record always fits
            request_timeout_ms=timeout_ms,
            client_id=f"{s.prefix}-gateway",
        )
        admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap_servers, request_timeout_ms=timeout_ms)
        offsets = self.new_reader(request_timeout_ms=timeout_ms)
        await producer.start()
        await admin.start()
        await offsets.start()
        self._producer, self._admin, self._offsets = producer, admin, offsets
        log.info("kafka gateway started (bootstrap %s)", s.bootstrap)

    async def stop(self) -> None:
        producer, admin, offsets = self._producer, self._admin, self._offsets
        self._producer = self._admin = self._offsets = None
        if producer is not None:
            await producer.stop()
        if admin is not None:
            await admin.close()
        if offsets is not None:
            await offsets.stop()

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise NotReady("This worker is still starting; retry shortly")
        return self._producer

    def _require_admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            raise NotReady("This worker is still starting; retry shortly")
        return self._admin

    async def produce(
        self, records: Sequence[OutgoingRecord], partitions: Sequence[int | None] | None = None
    ) -> list[Produced]:
        """Produce records and wait until the broker has acknowledged every one.

        partitions[i] is record i's partition, or None to let the producer pick. Records
        are grouped per partition into Kafka record batches (one append each, one send per
        batch), so a request of many records costs a few sends, not one send per record.
        Within a partition the request order is kept.
        """
        with metrics.producing("idempotent"), traced_produce(records):
            return await self._produce(with_trace(records), partitions)

    async def _produce(
        self, records: Sequence[OutgoingRecord], partitions: Sequence[int | None] | None
    ) -> list[Produced]:
        producer = self._require_producer()
        if partitions is None or len(records) == 1 or None in partitions:
            return await self._produce_each(producer, records, partitions)
        by_partition: dict[tuple[str, int], list[int]] = {}
        for i, (record, partition) in enumerate(zip(records, partitions, strict=True)):
            assert partition is not None
            by_partition.setdefault((record.topic, partition), []).append(i)
        results: list[Produced | None] = [None] * len(records)
        pending = []
        for (topic, partition), indices in by_partition.items():
            turn = self._partition_turns.setdefault((topic, partition), asyncio.Lock())
            async with turn:
                pending += await self._send_batches(producer, topic, partition, records, indices)
        for future, placed in pending:
            meta = await guarded(future)
            for position, (index, timestamp) in enumerate(placed):
                results[index] = Produced(
                    partition=meta.partition, offset=meta.offset + position, timestamp=timestamp
                )
        return [r for r in results if r is not None]

    async def _produce_each(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[OutgoingRecord],
        partitions: Sequence[int | None] | None = None,
    ) -> list[Produced]:
        futures = []
        for i, r in enumerate(records):
            partition = partitions[i] if partitions is not None else None
            futures.append(
                await guarded(
                    producer.send(r.topic, value=r.value, key=r.key, headers=r.headers, partition=partition)
                )
            )
        if len(futures) == 1:  # a single publish: no gathering future around its one delivery
            m = await guarded(futures[0])
            return [Produced(m.partition, m.offset, m.timestamp)]
        metas = await guarded(asyncio.gather(*futures))
        return [Produced(m.partition, m.offset, m.timestamp) for m in metas]

    async def _send_batches(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partition: int,
        records: Sequence[OutgoingRecord],
        indices: list[int],
    ) -> list[tuple[Any, list[tuple[int, int]]]]:
        """Fill record batches for one partition; (delivery future, [(record index, timestamp)]) each.

        The caller holds the partition's turn: aiokafka (0.14) queues one batch per partition
        and makes send_batch wait for the one before it to drain, but its wait takes the
        time waited so far off what is left on every wake-up, so among many requests waiting
        for one partition a loser ran out of its 30 s within 1-3 s and the request failed
        with kafka_unavailable (11 of 1,000 batch requests in one bench run). Waiting for
        the turn first leaves send_batch one batch to wait for."""
        sent = []
        batch = producer.create_batch()
        placed: list[tuple[int, int]] = []
        for index in indices:
            r = records[index]
            meta = batch.append(key=r.key, value=r.value, timestamp=None, headers=r.headers)
            if meta is None:  # full: send it and start the next one
                sent.append((await guarded(producer.send_batch(batch, topic, partition=partition)), placed))
                batch = producer.create_batch()
                placed = []
                meta = batch.append(key=r.key, value=r.value, timestamp=None, headers=r.headers)
                if meta is None:
                    raise KafkaRejected(
                        "A record is larger than a Kafka batch can hold", {"size": len(r.value)}
                    )
            placed.append((index, meta.timestamp))
        if placed:
            sent.append((await guarded(producer.send_batch(batch, topic, partition=partition)), placed))
        return sent

    async def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next record of topic/partition will get."""
        if self._offsets is None:
            raise NotReady("This worker is still starting; retry shortly")
        tp = TopicPartition(topic, partition)
        ends = await guarded(self._offsets.end_offsets([tp]))
        return int(ends[tp])

    async def resolve_offsets(
        self, kafka_topic: str, partitions: int, start: Literal["earliest", "latest"] | int
    ) -> dict[int, int]:
        """Explicit offsets, per partition, for a start position as of now.

        earliest: each partition's first offset; latest: the offset its next record will
        get; a unix time in ms: the first record at or after it, else the end (so a time
        in the future behaves like latest). Resolved once, these never move again.
        """
        if self._offsets is None:
            raise NotReady("This worker is still starting; retry shortly")
        tps = [TopicPartition(kafka_topic, p) for p in range(partitions)]
        if start == "earliest":
            firsts = await guarded(self._offsets.beginning_offsets(tps))
            return {tp.partition: int(firsts[tp]) for tp in tps}
        ends = await guarded(self._offsets.end_offsets(tps))
        if start == "latest":
            return {tp.partition: int(ends[tp]) for tp in tps}
        found = await guarded(self._offsets.offsets_for_times({tp: start for tp in tps}))
        offsets = {}
        for tp in tps:
            hit = found.get(tp)  # None: no record at or after the time
            offsets[tp.partition] = int(ends[tp]) if hit is None else int(hit.offset)
        return offsets

    async def committed_offsets(self, group: str) -> dict[TopicPartition, OffsetAndMetadata]:
        """A consumer group's committed offsets (with their metadata); empty when it has none."""
        found = await guarded(self._require_admin().list_consumer_group_offsets(group))
        return {tp: meta for tp, meta in found.items() if meta.offset >= 0}

    async def broker_count(self) -> int:
        cluster = await guarded(self._require_admin().describe_cluster())
        return len(cluster.get("brokers", []))

    async def create_topic(
        self, name: str, partitions: int, replication_factor: int, configs: dict[str, str]
    ) -> bool:
        """Create a Kafka topic. False when it already existed."""
        admin = self._require_admin()
        new = NewTopic(name, partitions, replication_factor, topic_configs=configs)
        response = await guarded(admin.create_topics([new]))
        for _name, code, *rest in response.topic_errors:
            if code == 0:
                continue
            err = for_code(code)(rest[0] if rest and rest[0] else "")
            if isinstance(err, TopicAlreadyExistsError):
                return False
            raise translate(err)
        return True

    async def delete_topic(self, name: str) -> bool:
        """Delete a Kafka topic. False when it did not exist."""
        admin = self._require_admin()
        response = await guarded(admin.delete_topics([name]))
        for _name, code, *_ in response.topic_error_codes:
            if code == 0:
                continue
            err = for_code(code)()
            if isinstance(err, UnknownTopicOrPartitionError):
                return False
            raise translate(err)
        await self._wait_until_gone(name)
        return True

    async def _wait_until_gone(self, name: str) -> None:
        """Kafka deletes asynchronously; a create of the same name must not race it."""
        admin = self._require_admin()
        for _ in range(200):
            if name not in await guarded(admin.list_topics()):
                return
            await asyncio.sleep(0.05)
        log.warning("kafka topic %s still listed 10 s after its deletion", name)

    async def ping(self) -> bool:
        """Whether the broker answers; asked at most once a second (a cluster description
        costs the worker tens of ms of CPU, and health checks come often)."""
        at, answered = self._pinged
        if time.monotonic() - at < PING_EVERY_S:
            return answered
        try:
            await asyncio.wait_for(self.broker_count(), timeout=3)
            answered = True
        except (TimeoutError, BusError):
            answered = False
        self._pinged = (time.monotonic(), answered)
        return answered

    def new_reader(self, **options: Any) -> AIOKafkaConsumer:
        """A consumer without a group, for a reader that tracks its own positions. Its
        fetches are bounded (aiokafka's defaults buffer up to 50 MiB a consumer): a reader
        of a topic with a backlog holds at most about a MiB while its client reads."""
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_bytes=READER_FETCH_MAX_BYTES,
            max_partition_fetch_bytes=READER_PARTITION_FETCH_BYTES,
            **options,
        )


async def declare_topics(settings: Settings, specs: Sequence[tuple[str, int, dict[str, str]]]) -> None:
    """Create topics that do not exist yet (name, partitions, configs); existing ones are kept."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await guarded(admin.start())
    try:
        wanted = [
            NewTopic(name, partitions, settings.replication_factor, topic_configs=configs)
            for name, partitions, configs in specs
        ]
        response = await guarded(admin.create_topics(wanted))
        for name, code, *_ in response.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):
                log.warning("could not create internal topic %s (error %d)", name, code)
    finally:
        await admin.close()
