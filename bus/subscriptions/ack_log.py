"""The subscription log: what a subscription's owner must not forget across a crash.

Kafka's committed offset of a subscription only moves over a contiguous run of acked
records, so it cannot say which records *above* it are acked already, nor how often a
pending record was delivered. The owner appends that to the log, a Kafka topic keyed by
subscription (same partitioning as the owners topic), and each commit carries, in its
metadata, the oldest log offset that still matters. A new owner reads the log from there
and so redelivers only what was never acked, with the right delivery counts.

Every append is a Kafka transaction with one transactional id per subscription. That
gives two things: a dead letter and the event that retires its record commit together,
and a new owner fences the old one (a worker that lost the subscription without
noticing can no longer append). Appends that arrive while a transaction commits are
grouped into the next one, so acks at a high rate cost a few transactions per second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, Field

from bus.errors import OwnerMoved
from bus.kafka.gateway import OutgoingRecord, declare_topics, guarded
from bus.settings import Settings

__all__ = ["LogEvent", "LogWriter", "ensure_log_topic", "read_log"]

log = logging.getLogger(__name__)

EventKind = Literal["delivered", "acked", "seek"]


class LogEvent(BaseModel):
    """One change of a subscription's delivery state (a record on the log topic)."""

    sub: str
    kind: EventKind
    # delivered: [partition, offset, delivery count, first delivery ms, last delivery ms]
    # acked (also dead-lettered, or skipped by the filter): [partition, offset]
    items: list[list[int]] = Field(default_factory=list)
    epoch: int = 0  # seek: the epoch it starts
    offsets: dict[int, int] = Field(default_factory=dict)  # seek: the new positions

    @classmethod
    def of_items(cls, sub: str, kind: EventKind, items: list[list[int]]) -> LogEvent:
        """A delivered or acked event of the dispatcher's own ints, built without validation:
        validating a lease of 500 deliveries' items was ~6% of a manual-ack owner's CPU."""
        return cls.model_construct(sub=sub, kind=kind, items=items)


def log_topic_name(settings: Settings) -> str:
    return f"{settings.prefix}-subscription-log"


async def ensure_log_topic(settings: Settings) -> None:
    """Partitioned like the owners topic, so a subscription's log partition moves with it."""
    week_ms = str(7 * 24 * 3600 * 1000)
    await declare_topics(
        settings, [(log_topic_name(settings), settings.state_partitions, {"retention.ms": week_ms})]
    )


@dataclass
class _Append:
    events: list[LogEvent]
    extra: list[OutgoingRecord]
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class LogWriter:
    """Appends a subscription's events (and records that must land with them) transactionally."""

    def __init__(self, settings: Settings, sub_key: str, partition: int) -> None:
        self.settings = settings
        self.sub_key = sub_key
        self.partition = partition
        self.topic = log_topic_name(settings)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            transactional_id=f"{settings.prefix}-sub-{sub_key}",
            enable_idempotence=True,
            acks="all",
            linger_ms=0,
            max_request_size=settings.limits.max_payload_bytes * 2 + 1_048_576,
            request_timeout_ms=int(settings.timing.kafka_request_timeout * 1000),
        )
        self._queue: list[_Append] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.end = 0  # the log offset after this writer's last append

    async def start(self) -> None:
        await guarded(self._producer.start())  # init_transactions: fences a previous owner
        self._task = asyncio.create_task(self._run(), name=f"sublog {self.sub_key}")

    async def stop(self) -> None:
        """Stop appending; every append not committed yet fails with OwnerMoved (503, retry
        on the new owner), the batch being committed included: no waiter is left unanswered."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._fail(self._queue)
        self._queue = []
        await self._producer.stop()

    def _fail(self, batch: list[_Append]) -> None:
        for item in batch:
            if not item.done.done():
                item.done.set_exception(
                    OwnerMoved(
                        "The subscription moved to another worker; retry", {"subscription": self.sub_key}
                    )
                )

    def append(self, events: list[LogEvent], extra: Sequence[OutgoingRecord] = ()) -> asyncio.Future[int]:
        """Queue events (and extra records); the future gives the log offset of the first event."""
        item = _Append(events, list(extra))
        self._queue.append(item)
        self._wake.set()
        return item.done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                self._fail(batch)  # stopped mid-commit: the transaction aborts, its waiters hear so
                raise
            except Exception as exc:  # each waiter decides what a lost append means
                log.warning("subscription log append for %s failed: %s", self.sub_key, exc)
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)

    async def _commit(self, batch: list[_Append]) -> None:
        key = self.sub_key.encode()
        async with self._producer.transaction():
            sends = []
            for item in batch:
                firsts = [
                    await self._producer.send(
                        self.topic, e.model_dump_json().encode(), key=key, partition=self.partition
                    )
                    for e in item.events
                ]
                for r in item.extra:
                    await self._producer.send(r.topic, r.value, key=r.key, headers=r.headers)
                sends.append((item, firsts[0] if firsts else None))
        for item, first in sends:
            offset = (await first).offset if first is not None else self.end
            self.end = max(self.end, offset + len(item.events))
            item.done.set_result(offset)


async def read_log(
    settings: Settings, partition: int, start: int | None, sub_key: str
) -> tuple[list[tuple[int, LogEvent]], int]:
    """The committed events of sub_key from start to the current end of its log partition,
    each with its log offset (none when start is None), and that end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await guarded(consumer.start())
    try:
        tp = TopicPartition(log_topic_name(settings), partition)
        consumer.assign([tp])
        end = (await guarded(consumer.end_offsets([tp])))[tp]
        if start is None:
            return [], end
        first = (await guarded(consumer.beginning_offsets([tp])))[tp]
        consumer.seek(tp, max(start, first))
        events: list[tuple[int, LogEvent]] = []
        key = sub_key.encode()
        while await guarded(consumer.position(tp)) < end:
            batches = await guarded(consumer.getmany(tp, timeout_ms=500, max_records=2000))
            for record in batches.get(tp, []):
                if record.key == key and record.value is not None:
                    events.append((record.offset, LogEvent.model_validate_json(record.value)))
        return events, end
    finally:
        await consumer.stop()
