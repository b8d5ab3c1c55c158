"""Kafka transactions for what an owner must write all at once or not at all.

One transactional producer per state partition this worker owns, with the transactional
id of the partition: when another worker takes the partition over and writes, its
init_transactions fences this one, so a worker that lost a partition without noticing
can no longer commit anything for it. Every processor of the bus reads committed records
only (bus.kafka.faust_app), so a transaction cut short by a crash is never applied.
"""

from __future__ import annotations

import asyncio
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
        self._locks: dict[int, asyncio.Lock] = {}

    async def commit(
        self, settings: Settings, partition: int, records: Sequence[tuple[OutgoingRecord, int]]
    ) -> list[Produced]:
        """Write records (each with its partition) in one transaction, for state partition `partition`."""
        bare = [r for r, _ in records]
        with metrics.producing("transaction"), traced_produce(bare, transaction=partition):
            traced = with_trace(bare)
            placed = [(r, p) for r, (_, p) in zip(traced, records, strict=True)]
            return await self._commit(settings, partition, placed)

    async def _commit(
        self, settings: Settings, partition: int, records: Sequence[tuple[OutgoingRecord, int]]
    ) -> list[Produced]:
        async with self._locks.setdefault(partition, asyncio.Lock()):
            producer = await self._producer(settings, partition)
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

    async def open(self, settings: Settings, partition: int) -> bool:
        """Make sure this worker holds the partition's transactional producer; True when it
        was opened just now (which fenced any former owner: decide on a fresh catch-up)."""
        async with self._locks.setdefault(partition, asyncio.Lock()):
            fresh = partition not in self._producers
            await self._producer(settings, partition)
            return fresh

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
