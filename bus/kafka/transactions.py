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
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import IllegalOperation, KafkaError

from bus import metrics
from bus.errors import OwnerMoved
from bus.kafka.gateway import OutgoingRecord, Produced, traced_produce, translate, with_trace
from bus.settings import Settings

__all__ = ["TRANSACTIONS"]

log = logging.getLogger(__name__)


class PartitionTransactions:
    def __init__(self) -> None:
        self._producers: dict[int, AIOKafkaProducer] = {}
        self._generations: dict[int, int] = {}  # partition -> generation of its open producer
        self._opened = itertools.count(1)
        self._locks: dict[int, asyncio.Lock] = {}

    def generation(self, partition: int) -> int | None:
        """The generation of the partition's open producer; None when none is open."""
        return self._generations.get(partition) if partition in self._producers else None

    async def commit(
        self, partition: int, generation: int, records: Sequence[tuple[OutgoingRecord, int]]
    ) -> list[Produced]:
        """Write records (each with its partition) in one transaction, for state partition
        `partition`, with the producer of the generation the records were decided under."""
        bare = [r for r, _ in records]
        with metrics.producing("transaction"), traced_produce(bare, transaction=partition):
            traced = with_trace(bare)
            placed = [(r, p) for r, (_, p) in zip(traced, records, strict=True)]
            return await self._commit(partition, generation, placed)

    async def _commit(
        self, partition: int, generation: int, records: Sequence[tuple[OutgoingRecord, int]]
    ) -> list[Produced]:
        async with self._locks.setdefault(partition, asyncio.Lock()):
            producer = self._producers.get(partition)
            if producer is None or self._generations.get(partition) != generation:
                raise OwnerMoved(
                    "The partition changed hands after this was decided; retry", {"partition": partition}
                )
            try:
                async with producer.transaction():
                    sent = [
                        await producer.send(r.topic, r.value, key=r.key, headers=r.headers, partition=p)
                        for r, p in records
                    ]
                metas = [await future for future in sent]
            except KafkaError as exc:
                await self._drop(partition)  # fenced or broken: the next commit starts afresh
                error = translate(exc)
                raise OwnerMoved(
                    f"The transaction did not commit: {error.message}; retry", {"partition": partition}
                ) from exc
            except IllegalOperation as exc:  # the producer was closed under it (the partition was lost)
                await self._drop(partition)
                raise OwnerMoved(
                    "The transaction did not commit: its producer closed; retry", {"partition": partition}
                ) from exc
        return [Produced(m.partition, m.offset, m.timestamp) for m in metas]

    async def open(self, settings: Settings, partition: int) -> int:
        """Make sure this worker holds the partition's transactional producer; its generation.
        A new generation fenced any former owner: decide only on a view caught up after it."""
        async with self._locks.setdefault(partition, asyncio.Lock()):
            await self._producer(settings, partition)
            return self._generations[partition]

    async def _producer(self, settings: Settings, partition: int) -> AIOKafkaProducer:
        found = self._producers.get(partition)
        if found is None:
            found = AIOKafkaProducer(
                bootstrap_servers=settings.bootstrap_servers,
                transactional_id=f"{settings.prefix}-owner-{partition}",
                enable_idempotence=True,
                acks="all",
                linger_ms=0,
                max_request_size=settings.limits.max_payload_bytes * 2 + 1_048_576,
            )
            await found.start()  # init_transactions: fences the partition's previous owner
            self._producers[partition] = found
            self._generations[partition] = next(self._opened)
        return found

    async def _drop(self, partition: int) -> None:
        producer = self._producers.pop(partition, None)
        if producer is not None:
            try:
                await producer.stop()
            except KafkaError as exc:
                log.info("closing the transactional producer of partition %d: %s", partition, exc)

    async def forget(self, partitions: set[int] | None) -> None:
        """Partitions this worker lost (all when None): close their producers."""
        for partition in [p for p in self._producers if partitions is None or p in partitions]:
            await self._drop(partition)


TRANSACTIONS = PartitionTransactions()
