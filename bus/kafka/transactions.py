"""Kafka transactions for what an owner must write all at once or not at all.

One transactional producer per state partition this worker owns, with the transactional
id of the partition: when another worker takes the partition over and writes, its
init_transactions fences this one, so a worker that lost a partition without noticing
can no longer commit anything for it. Every processor of the bus reads committed records
only (bus.kafka.faust_app), so a transaction cut short by a crash is never applied.

Each producer opened gets a new generation number. A decision is made under the
generation its view caught up under (bus.state.keyed), and commits under that generation
only: a commit never opens a producer. Opening one fences every other worker, so a
decision taken before (a worker that stalled with requests queued, and resumed) would
otherwise land with the new producer on a view that lacks what the successor wrote.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import IllegalOperation, KafkaError
from aiokafka.structs import RecordMetadata

from bus import metrics
from bus.errors import OwnerMoved
from bus.kafka.gateway import OutgoingRecord, Produced, traced_produce, translate, with_trace
from bus.settings import Settings

__all__ = ["TRANSACTIONS", "FollowUp", "PartitionTransactions", "partition_producer"]

log = logging.getLogger(__name__)


# A transaction takes what was queued while the previous one committed, up to these.
MAX_RECORDS_PER_TRANSACTION = 500
MAX_BYTES_PER_TRANSACTION = 4 * 1024 * 1024


FollowUp = Callable[[list[Produced]], Sequence[tuple[OutgoingRecord, int]]]


@dataclass
class _Queued:
    """Records one decision wrote, waiting for their partition's next transaction."""

    generation: int
    records: Sequence[tuple[OutgoingRecord, int]]
    committed: asyncio.Future[list[Produced]]
    # Records built from where the broker put the first ones, in the same transaction.
    then: FollowUp | None = None

    @property
    def size(self) -> int:
        return sum(len(r.value) + len(r.key or b"") for r, _ in self.records)


class PartitionTransactions:
    """Group commit: the decisions of one state partition queue their records, and one
    committer per partition writes what queued while the previous transaction committed
    in the next, in queue order (so in decision order). Decisions keep coming while a
    transaction is in flight; each caller's future resolves when its own records commit."""

    def __init__(
        self,
        new_producer: Callable[[Settings, int], AIOKafkaProducer] | None = None,
        commit_timeout: float | None = None,  # None: the settings' kafka_request_timeout
    ) -> None:
        self._new_producer = new_producer or partition_producer
        self._commit_timeout = commit_timeout
        self._producers: dict[int, AIOKafkaProducer] = {}
        self._generations: dict[int, int] = {}  # partition -> generation of its open producer
        # partition -> resolved when its open producer is dropped: a commit in flight on it
        # ends then, not at the commit timeout.
        self._dropped: dict[int, asyncio.Future[None]] = {}
        self._closing: set[asyncio.Task[None]] = set()  # producers let go of, still closing
        self._opened = itertools.count(1)
        self._locks: dict[int, asyncio.Lock] = {}
        self._queues: dict[int, deque[_Queued]] = {}
        self._committers: dict[int, asyncio.Task[None]] = {}

    def generation(self, partition: int) -> int | None:
        """The generation of the partition's open producer; None when none is open."""
        return self._generations.get(partition) if partition in self._producers else None

    def enqueue(
        self,
        partition: int,
        generation: int,
        records: Sequence[tuple[OutgoingRecord, int]],
        then: FollowUp | None = None,
    ) -> asyncio.Future[list[Produced]]:
        """Queue records (each with its partition) for state partition `partition`'s next
        transaction, to commit with the producer of the generation they were decided
        under; the future resolves when they commit (OwnerMoved when they never will)."""
        bare = [r for r, _ in records]
        # The producer span marks the hand-over to the transaction (a consumer's span is
        # its child); it ends here, the commit's time is agentbus_kafka_produce_seconds'.
        with traced_produce(bare, transaction=partition):
            traced = with_trace(bare)
        placed = [(r, p) for r, (_, p) in zip(traced, records, strict=True)]
        queued = _Queued(generation, placed, asyncio.get_running_loop().create_future(), then)
        queued.committed.add_done_callback(_heard)
        self._queues.setdefault(partition, deque()).append(queued)
        committer = self._committers.get(partition)
        if committer is None or committer.done():
            self._committers[partition] = asyncio.create_task(self._drain(partition))
        # A caller that goes away (a client hanging up) must not take its records out of
        # the queue: decisions queued after them count on them.
        return asyncio.shield(queued.committed)

    async def commit(
        self,
        partition: int,
        generation: int,
        records: Sequence[tuple[OutgoingRecord, int]],
        then: FollowUp | None = None,
    ) -> list[Produced]:
        """enqueue() and wait until the records commit."""
        with metrics.producing("transaction"):
            return await self.enqueue(partition, generation, records, then)

    async def _drain(self, partition: int) -> None:
        queue = self._queues[partition]
        while queue:
            batch = self._next_batch(queue)
            try:
                await self._commit(partition, batch)
            except Exception as exc:  # every caller of the batch hears of it; the committer goes on
                for queued in batch:
                    if not queued.committed.done():
                        queued.committed.set_exception(exc)

    def _next_batch(self, queue: deque[_Queued]) -> list[_Queued]:
        batch = [queue.popleft()]
        records, size = len(batch[0].records), batch[0].size
        while queue and records + len(queue[0].records) <= MAX_RECORDS_PER_TRANSACTION:
            size += queue[0].size
            if size > MAX_BYTES_PER_TRANSACTION:
                break
            records += len(queue[0].records)
            batch.append(queue.popleft())
        return batch

    async def _commit(self, partition: int, batch: list[_Queued]) -> None:
        async with self._locks.setdefault(partition, asyncio.Lock()):
            producer = self._producers.get(partition)
            current = self._generations.get(partition) if producer is not None else None
            dropped = self._dropped.get(partition)
            for queued in batch:
                if queued.generation != current:  # decided before the partition changed hands
                    queued.committed.set_exception(
                        OwnerMoved(
                            "The partition changed hands after this was decided; retry",
                            {"partition": partition},
                        )
                    )
            batch = [queued for queued in batch if not queued.committed.done()]
            if producer is None or dropped is None or not batch:
                return
            metrics.TRANSACTION_DECISIONS.observe(len(batch))
            records = [placed for queued in batch for placed in queued.records]
            try:
                metas = await self._ended_in_time(self._write(producer, batch, records), dropped)
            except KafkaError as exc:
                self._drop(partition)  # fenced or broken: the next commit starts afresh
                error = translate(exc)
                raise OwnerMoved(
                    f"The transaction did not commit: {error.message}; retry", {"partition": partition}
                ) from exc
            except IllegalOperation as exc:  # the producer was closed under it (the partition was lost)
                self._drop(partition)
                raise OwnerMoved(
                    "The transaction did not commit: its producer closed; retry", {"partition": partition}
                ) from exc
            except TimeoutError as exc:
                self._drop(partition)
                raise OwnerMoved(
                    "The transaction did not end in time; retry", {"partition": partition}
                ) from exc
            except _Dropped as exc:  # the partition was revoked while this committed
                raise OwnerMoved(
                    "The partition was revoked while its transaction committed; retry",
                    {"partition": partition},
                ) from exc
            except BaseException:
                # Whatever else cut it short: decisions queued behind this one counted on it,
                # so they must not commit with this producer either.
                self._drop(partition)
                raise
        for queued in batch:
            mine, metas = metas[: len(queued.records)], metas[len(queued.records) :]
            queued.committed.set_result([Produced(m.partition, m.offset, m.timestamp) for m in mine])

    async def _write(
        self, producer: AIOKafkaProducer, batch: list[_Queued], records: list[tuple[OutgoingRecord, int]]
    ) -> list[RecordMetadata]:
        async with producer.transaction():
            sent = [await _send(producer, r, p) for r, p in records]
            if any(queued.then is not None for queued in batch):
                sent += await self._follow_up(producer, batch, [await future for future in sent])
        return [await future for future in sent]

    async def _ended_in_time(
        self, write: Coroutine[Any, Any, list[RecordMetadata]], dropped: asyncio.Future[None]
    ) -> list[RecordMetadata]:
        """The transaction's outcome; _Dropped as soon as its producer is dropped (the
        partition revoked mid-commit), TimeoutError after the commit timeout. A transaction
        whose producer was stopped under it waits for an end that never comes (aiokafka's
        sender is gone), and its abort too: awaited in place it would hold the partition's
        lock and queue, so no later decision and no new owner could write. It is left to
        itself, and the next producer of the partition fences it. Its outcome is unknown
        to the callers (owner_moved): a retry of the same decision finds it in the view
        the next owner catches up, if it committed."""
        transaction = asyncio.ensure_future(write)
        try:
            ends: set[asyncio.Future[Any]] = {transaction, dropped}
            await asyncio.wait(ends, timeout=self._commit_timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            transaction.cancel()
            raise
        if transaction.done():
            return transaction.result()
        transaction.cancel()
        transaction.add_done_callback(_heard)
        raise _Dropped if dropped.done() else TimeoutError

    @staticmethod
    async def _follow_up(
        producer: AIOKafkaProducer, batch: list[_Queued], metas: list[RecordMetadata]
    ) -> list[asyncio.Future[RecordMetadata]]:
        """Send each decision's follow-up records, built from where its records went."""
        sent = []
        for queued in batch:
            mine, metas = metas[: len(queued.records)], metas[len(queued.records) :]
            if queued.then is not None:
                produced = [Produced(m.partition, m.offset, m.timestamp) for m in mine]
                sent += [await _send(producer, r, p) for r, p in queued.then(produced)]
        return sent

    async def open(self, settings: Settings, partition: int) -> int:
        """Make sure this worker holds the partition's transactional producer; its generation.
        A new generation fenced any former owner: decide only on a view caught up after it."""
        if self._commit_timeout is None:
            self._commit_timeout = settings.timing.kafka_request_timeout
        async with self._locks.setdefault(partition, asyncio.Lock()):
            await self._producer(settings, partition)
            return self._generations[partition]

    async def _producer(self, settings: Settings, partition: int) -> AIOKafkaProducer:
        found = self._producers.get(partition)
        if found is None:
            found = self._new_producer(settings, partition)
            await found.start()  # init_transactions: fences the partition's previous owner
            self._producers[partition] = found
            self._generations[partition] = next(self._opened)
            self._dropped[partition] = asyncio.get_running_loop().create_future()
        return found

    def _drop(self, partition: int) -> None:
        """Let go of the partition's producer: a commit in flight on it gives up now
        (owner_moved), and it closes in the background. Its close waits for its unsent
        records (aiokafka flushes them first), which may wait for a dead broker; awaited
        here it would hold the partition (its lock, its revoke) that long. What it still
        had open cannot commit once the next producer of the partition fences it."""
        producer = self._producers.pop(partition, None)
        dropped = self._dropped.pop(partition, None)
        if dropped is not None and not dropped.done():
            dropped.set_result(None)
        if producer is not None:
            closing = asyncio.create_task(_close(producer, partition))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def forget(self, partitions: set[int] | None) -> None:
        """Partitions this worker lost: let go of their producers. All when None (the
        worker stopping), and then wait until every producer let go of has closed."""
        for partition in [p for p in self._producers if partitions is None or p in partitions]:
            self._drop(partition)
        if partitions is None:
            await asyncio.gather(*self._closing)


async def _close(producer: AIOKafkaProducer, partition: int) -> None:
    try:
        await producer.stop()
    except KafkaError as exc:
        log.info("closing the transactional producer of partition %d: %s", partition, exc)


def partition_producer(settings: Settings, partition: int) -> AIOKafkaProducer:
    """The transactional producer of a state partition (its id is the partition's)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        transactional_id=f"{settings.prefix}-owner-{partition}",
        enable_idempotence=True,
        acks="all",
        linger_ms=0,
        max_request_size=settings.limits.max_payload_bytes * 2 + 1_048_576,
    )


async def _send(
    producer: AIOKafkaProducer, record: OutgoingRecord, partition: int
) -> asyncio.Future[RecordMetadata]:
    future: asyncio.Future[RecordMetadata] = await producer.send(
        record.topic, record.value, key=record.key, headers=record.headers, partition=partition
    )
    return future


class _Dropped(Exception):
    """The producer of a commit in flight was dropped (its partition revoked)."""


def _heard(future: asyncio.Future[Any]) -> None:
    """Mark the outcome as seen: a caller that went away does not read it."""
    if not future.cancelled():
        future.exception()


TRANSACTIONS = PartitionTransactions()
