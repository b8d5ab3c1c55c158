"""Group commit of a state partition's decisions (bus.kafka.transactions), against a
producer that keeps its transactions in memory and can hold one in flight or fail it.
(Fencing by a real broker is proven by tests/integration/test_conversation_pause.py.)"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from bus.errors import OwnerMoved
from bus.kafka.gateway import OutgoingRecord, Produced
from bus.kafka.transactions import PartitionTransactions
from bus.settings import Settings, get_settings

PARTITION = 3


class FakeProducer:
    """Transactions in memory: `committed` holds each committed transaction's values."""

    def __init__(self) -> None:
        self.committed: list[list[bytes]] = []
        self.in_flight = asyncio.Event()  # set while a transaction waits for `release`
        self.release = asyncio.Event()
        self.release.set()
        self.fail_next = False
        self.stopped = False
        self.flushed = asyncio.Event()  # stop() returns once set (aiokafka flushes first)
        self.flushed.set()
        self._ends: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._open: list[bytes] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True
        await self.flushed.wait()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._open = []
        yield
        self.in_flight.set()
        await self.release.wait()
        self.in_flight.clear()
        if self.fail_next:
            self.fail_next = False
            raise KafkaError("fenced")
        self.committed.append(self._open)

    async def send(
        self, topic: str, value: bytes, key: bytes | None, headers: Any, partition: int
    ) -> asyncio.Future[RecordMetadata]:
        offset = self._ends[(topic, partition)]
        self._ends[(topic, partition)] += 1
        self._open.append(value)
        done: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        done.set_result(RecordMetadata(topic, partition, TopicPartition(topic, partition), offset, 0, 0, 0))
        return done


def record(value: str) -> list[tuple[OutgoingRecord, int]]:
    return [(OutgoingRecord("log", value.encode(), b"k", []), PARTITION)]


async def opened(
    commit_timeout: float | None = None,
) -> tuple[PartitionTransactions, list[FakeProducer], int]:
    made: list[FakeProducer] = []

    def new_producer(settings: Settings, partition: int) -> Any:
        made.append(FakeProducer())
        return made[-1]

    transactions = PartitionTransactions(new_producer, commit_timeout)
    generation = await transactions.open(get_settings(), PARTITION)
    return transactions, made, generation


async def test_decisions_queued_while_a_transaction_commits_go_together_in_the_next() -> None:
    transactions, [producer], generation = await opened()
    producer.release.clear()
    first = transactions.enqueue(PARTITION, generation, record("a"))
    await producer.in_flight.wait()
    later = [transactions.enqueue(PARTITION, generation, record(v)) for v in "bcd"]
    producer.release.set()
    answers = [await f for f in (first, *later)]
    assert producer.committed == [[b"a"], [b"b", b"c", b"d"]]
    assert [a[0].offset for a in answers] == [0, 1, 2, 3]  # each its own record, in decision order


async def test_a_failed_transaction_fails_every_later_decision_of_its_generation() -> None:
    transactions, [producer], generation = await opened()
    producer.release.clear()
    producer.fail_next = True
    first = transactions.enqueue(PARTITION, generation, record("a"))
    await producer.in_flight.wait()
    later = transactions.enqueue(PARTITION, generation, record("b"))  # decided counting on "a"
    producer.release.set()
    for pending in (first, later):
        with pytest.raises(OwnerMoved):
            await pending
    assert producer.committed == [] and producer.stopped
    assert transactions.generation(PARTITION) is None  # the next decision catches up afresh


async def test_a_decision_of_an_older_generation_writes_nothing() -> None:
    transactions, made, generation = await opened()
    made[0].fail_next = True
    with pytest.raises(OwnerMoved):
        await transactions.enqueue(PARTITION, generation, record("a"))
    newer = await transactions.open(get_settings(), PARTITION)  # a fresh catch-up reopens it
    assert newer != generation
    with pytest.raises(OwnerMoved):
        await transactions.enqueue(PARTITION, generation, record("stale"))
    await transactions.enqueue(PARTITION, newer, record("fresh"))
    assert made[1].committed == [[b"fresh"]]


async def test_follow_up_records_are_built_from_where_the_first_went_in_the_same_transaction() -> None:
    transactions, [producer], generation = await opened()

    def receipt(produced: Sequence[Produced]) -> list[tuple[OutgoingRecord, int]]:
        return record(f"receipt of {produced[0].offset}")

    await transactions.enqueue(PARTITION, generation, record("x"))
    answer = await transactions.enqueue(PARTITION, generation, record("y"), then=receipt)
    assert producer.committed[-1] == [b"y", b"receipt of 1"]
    assert [p.offset for p in answer] == [1]  # the caller hears of its own records only


async def test_a_caller_that_goes_away_does_not_take_its_records_out_of_the_queue() -> None:
    transactions, [producer], generation = await opened()
    producer.release.clear()
    first = transactions.enqueue(PARTITION, generation, record("a"))
    await producer.in_flight.wait()
    gone = transactions.enqueue(PARTITION, generation, record("b"))
    gone.cancel()  # a client hung up
    last = transactions.enqueue(PARTITION, generation, record("c"))
    producer.release.set()
    await first
    await last
    assert producer.committed == [[b"a"], [b"b", b"c"]]
    await asyncio.sleep(0)


async def test_a_commit_whose_producer_closed_under_it_fails_instead_of_holding_the_partition() -> None:
    """A revoke closes the producer while a commit waits for its end, which then never comes
    (aiokafka's sender is gone): the commit fails (owner_moved) and the partition opens
    again, instead of the commit holding the partition's lock and queue for good (the churn
    soak of tests/faults saw a state partition unserved for minutes after a rebalance)."""
    transactions, made, generation = await opened(commit_timeout=0.2)
    made[0].release.clear()  # this transaction never ends
    stuck = transactions.enqueue(PARTITION, generation, record("a"))
    await made[0].in_flight.wait()
    await transactions.forget({PARTITION})  # revoked mid-commit: the producer stops
    with pytest.raises(OwnerMoved):
        await asyncio.wait_for(stuck, 5)
    newer = await asyncio.wait_for(transactions.open(get_settings(), PARTITION), 5)
    await asyncio.wait_for(transactions.enqueue(PARTITION, newer, record("b")), 5)
    assert made[1].committed == [[b"b"]]


async def test_a_revoke_ends_the_commit_in_flight_at_once_not_at_the_commit_timeout() -> None:
    """A broker kill can rebalance the group while transactions wait for the killed
    leader's partitions (a one-partition topic the group reads loses its leader: its
    metadata changes). The revoke closes the producers; a commit in flight must give up
    then and let the partition open again, not hold its lock for the whole commit timeout
    (AGENTBUS_KAFKA_REQUEST_TIMEOUT, 30 s), when it is often this worker's again."""
    transactions, made, generation = await opened(commit_timeout=30.0)
    made[0].release.clear()  # this transaction never ends
    stuck = transactions.enqueue(PARTITION, generation, record("a"))
    queued = transactions.enqueue(PARTITION, generation, record("b"))  # decided counting on "a"
    await made[0].in_flight.wait()
    await transactions.forget({PARTITION})
    for pending in (stuck, queued):
        with pytest.raises(OwnerMoved):
            await asyncio.wait_for(pending, 2)
    newer = await asyncio.wait_for(transactions.open(get_settings(), PARTITION), 2)
    await asyncio.wait_for(transactions.enqueue(PARTITION, newer, record("c")), 2)
    assert made[1].committed == [[b"c"]] and made[0].committed == []


async def test_a_producer_let_go_of_closes_without_holding_its_partition() -> None:
    """A producer's close waits for its unsent records, which may wait for a dead broker
    until it is back. A commit that did not end in time lets go of its producer, and the
    partition opens again at once while the old producer still closes (the fault suite
    saw a state partition locked for 10 s more by that close, after its commit's 30 s)."""
    transactions, made, generation = await opened(commit_timeout=0.2)
    made[0].release.clear()  # this transaction never ends
    made[0].flushed.clear()  # and the producer's close waits for records that never go
    with pytest.raises(OwnerMoved):
        await asyncio.wait_for(transactions.enqueue(PARTITION, generation, record("a")), 5)
    newer = await asyncio.wait_for(transactions.open(get_settings(), PARTITION), 2)
    await asyncio.wait_for(transactions.enqueue(PARTITION, newer, record("b")), 2)
    assert made[1].committed == [[b"b"]] and made[0].stopped
    made[0].flushed.set()
    await asyncio.wait_for(transactions.forget(None), 2)  # a worker stopping waits for every close
