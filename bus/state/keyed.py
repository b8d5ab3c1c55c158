"""Keyed state: a Kafka log per primitive and the Faust table that is its view.

Agents and conversations keep their state the same way. Every change is a record on a
topic keyed by the entity (agent, conversation), appended by the key's owner only. A Faust
agent on that topic applies each record to a partitioned table (Kafka-changelogged, in
RocksDB), so the table is a view of the log: a worker that takes a partition over
recovers the table from its changelog and then applies whatever the log holds beyond it.

The owner decides (409s, sequence numbers) on a view that has caught up with the log:
once per partition and producer generation (bus.kafka.transactions), so nothing a
previous owner appended is missed, and then it waits for its own appends. Decisions about
one key run one at a time (a lock per key), so two requests never decide on the same
view. What a decision writes commits under the generation it was decided under, or not at
all: a worker that lost the partition, or fenced its successor since, writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import faust
from pydantic import BaseModel

from bus.cluster.ownership import is_owner, owned_partitions, owner_partition
from bus.errors import OwnerMoved
from bus.kafka.context import BusContext
from bus.kafka.faust_app import app
from bus.kafka.gateway import OutgoingRecord, Produced
from bus.kafka.table_store import prefixed_items, stored_value, table_store_options
from bus.kafka.transactions import TRANSACTIONS, FollowUp
from bus.settings import get_settings
from bus.state.key_locks import KeyLocks
from bus.state.waits import wait_until

__all__ = [
    "APPLIED",
    "BARRIER",
    "KeyedState",
    "decided_under",
    "enqueue_decided",
    "on_revoked",
    "replayed",
    "run_processor",
    "write_decided",
]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
Apply = Callable[["KeyedState", str, bytes, dict[str, str], int], None]
APPLIED = "\x00applied:"  # + partition: the last log offset the view reflects (never an entity key)
BARRIER = "\x00barrier"  # key of the records catch_up() waits for; the processors skip them
KIND_HEADER, BARRIER_KIND = "bus.kind", b"barrier"
# Partition -> the producer generation the current task's decision was made under (set
# by KeyedState.deciding, read by write_decided).
_generations_decided_under: ContextVar[Mapping[int, int] | None] = ContextVar("decided_under", default=None)


class KeyedState:
    def __init__(self, name: str, help: str) -> None:
        s = get_settings()
        self.name = name
        self.topic = app.topic(
            f"{s.prefix}-{name}",
            partitions=s.state_partitions,
            internal=True,
            key_type=str,
            value_type=bytes,
            value_serializer="raw",
        )
        self.table = app.Table(
            f"{name}-view",
            key_type=str,
            value_type=bytes,
            partitions=s.state_partitions,
            options=table_store_options(),
            help=help,
        )
        # Partition -> the producer generation under which the view caught up with the log.
        self.caught_up: dict[int, int] = {}
        # Bumped when a partition is lost: a catch-up that began before does not count (it
        # would leave the partition marked caught up, and a later takeover would skip it).
        self.epochs: dict[int, int] = {}
        self.locks = KeyLocks()

    @property
    def kafka_topic(self) -> str:
        return str(self.topic.get_topic_name())

    # -- the view ---------------------------------------------------------------------

    def raw(self, key: str) -> bytes | None:
        """The view's stored bytes under key (one store lookup), or None."""
        found: bytes | None = stored_value(self.table, key)
        return found

    def get(self, key: str, model: type[M]) -> M | None:
        raw = self.raw(key)
        return None if raw is None else model.model_validate_json(raw)

    async def get_fresh(self, ctx: BusContext, key: str, model: type[M]) -> M | None:
        """The key's value; when the view has none, look again after reading the log to its
        end: another worker may have written it a moment ago, and a 404 must not be
        decided on a view that lags it."""
        found = self.get(key, model)
        if found is None:
            await self.refresh(ctx, key)
            found = self.get(key, model)
        return found

    def put(self, key: str, value: BaseModel) -> None:
        """Only inside the processor (Faust writes tables in stream context)."""
        self.table[key] = value.model_dump_json().encode()

    def remove(self, key: str) -> None:
        self.table.pop(key, None)

    def owned_values(self, model: type[M], prefix: str = "") -> list[M]:
        """Every entity this worker owns (its active partitions), parsed. A view may hold
        other kinds under "kind:" keys (the conversations view holds calls and streams):
        those are read with their prefix, plain entity keys have no ':'."""
        return [value for _, value in self.owned_items(model, prefix)]

    def owned_items(self, model: type[M], prefix: str = "") -> list[tuple[str, M]]:
        """owned_values with their keys."""
        found = []
        for key, raw in list(self.table.items()):
            wanted = key.startswith(prefix) if prefix else ":" not in key
            if wanted and not key.startswith(APPLIED) and raw is not None and is_owner(key, self.topic):
                found.append((key, model.model_validate_json(raw)))
        return found

    def local_items(self, prefix: str, partitions: set[int]) -> list[tuple[str, bytes]]:
        """The raw entries of the given partitions (held here) whose key starts with prefix,
        found by a seek rather than a pass over the whole view."""
        return [(key, raw) for key, raw in prefixed_items(self.table, prefix, partitions) if raw is not None]

    def applied_offset(self, partition: int) -> int:
        raw = self.raw(f"{APPLIED}{partition}")
        return -1 if raw is None else int(raw)

    # -- the owner's side -------------------------------------------------------------

    def caught_up_partitions(self) -> set[int]:
        """Partitions whose view caught up under the producer still open for them."""
        return {p for p, g in self.caught_up.items() if TRANSACTIONS.generation(p) == g}

    @asynccontextmanager
    async def deciding(self, ctx: BusContext, key: str) -> AsyncIterator[None]:
        """Hold key's lock on a view that reflects its whole log so far (owner only); what
        is written meanwhile (write_decided) commits under this catch-up's generation."""
        if not is_owner(key, self.topic):
            raise OwnerMoved("This worker does not own this key now; retry", {"key": key})
        async with self.locks.hold(key):
            partition = owner_partition(key)
            generation = await self.catch_up(ctx, partition)
            decided = _generations_decided_under.get() or {}
            token = _generations_decided_under.set({**decided, partition: generation})
            try:
                yield
            finally:
                _generations_decided_under.reset(token)

    async def catch_up(self, ctx: BusContext, partition: int) -> int:
        """Wait until the view reflects every record of the partition so far (owner only);
        the generation of the partition's producer it holds for.

        A barrier record is appended and waited for: the processor applies records in order,
        so once it passed the barrier it applied everything before. (The log's end offset
        would not do: transaction markers take offsets that no record ever reaches.)"""
        if partition not in owned_partitions(self.topic):
            raise OwnerMoved("This worker does not own the partition now; retry", {"partition": partition})
        current = TRANSACTIONS.generation(partition)
        if current is not None and self.caught_up.get(partition) == current:
            return current
        epoch = self.epochs.get(partition, 0)
        # Fence any former owner first: its open transaction aborts, and nothing it tries to
        # commit later (a stalled worker resuming) can land; then read everything it wrote.
        generation = await TRANSACTIONS.open(ctx.settings, partition)
        await self._pass_barrier(ctx, partition)
        # Lost meanwhile (a standby copy of the view can pass the barrier too).
        if self.epochs.get(partition, 0) != epoch or partition not in owned_partitions(self.topic):
            raise OwnerMoved(
                "This worker lost the partition while catching up; retry", {"partition": partition}
            )
        self.caught_up[partition] = generation
        return generation

    async def refresh(self, ctx: BusContext, key: str) -> None:
        """Make the view reflect every record appended for key's partition so far, by anyone
        (another worker's writes to this log too): before a refusal such as a 404 is
        decided from it."""
        await self._pass_barrier(ctx, owner_partition(key))

    async def _pass_barrier(self, ctx: BusContext, partition: int) -> None:
        barrier = OutgoingRecord(self.kafka_topic, b"{}", BARRIER.encode(), [(KIND_HEADER, BARRIER_KIND)])
        [produced] = await ctx.gateway.produce([barrier], [partition])
        await wait_until(
            lambda: self.applied_offset(partition) >= produced.offset,
            ctx.settings.timing.command_timeout,
            f"{self.name} partition {partition} to catch up",
        )

    async def append(
        self, ctx: BusContext, key: str, value: BaseModel, headers: dict[str, str] | None = None
    ) -> Produced:
        """Append a record for key and wait until this worker's view reflects it."""
        partition = owner_partition(key)
        [produced] = await write_decided(partition, [(self.outgoing(key, value, headers), partition)])
        await wait_until(
            lambda: self.applied_offset(partition) >= produced.offset,
            ctx.settings.timing.command_timeout,
            f"{self.name} record {produced.offset} to apply",
        )
        return produced

    def outgoing(self, key: str, value: BaseModel, headers: dict[str, str] | None = None) -> OutgoingRecord:
        return OutgoingRecord(
            self.kafka_topic,
            value.model_dump_json().encode(),
            key.encode(),
            [(k, v.encode()) for k, v in (headers or {}).items()],
        )

    def forget(self, partitions: set[int]) -> None:
        """Partitions this worker lost: the next owner catches up on its own."""
        for partition in partitions:
            self.caught_up.pop(partition, None)
            self.epochs[partition] = self.epochs.get(partition, 0) + 1


async def write_decided(
    partition: int, records: Sequence[tuple[OutgoingRecord, int]], then: FollowUp | None = None
) -> list[Produced]:
    """Write what this task decided for partition under KeyedState.deciding (records with
    their partitions) in one transaction, under the producer generation it decided under:
    when the partition changed hands since (or this worker fenced its successor with a
    newer producer), nothing is written and the caller gets 503 owner_moved. then: see
    enqueue_decided."""
    return await TRANSACTIONS.commit(partition, decided_under(partition), records, then)


def enqueue_decided(
    partition: int, records: Sequence[tuple[OutgoingRecord, int]], then: FollowUp | None = None
) -> Awaitable[list[Produced]]:
    """write_decided, queued now and awaited later: a caller may let go of its key's lock
    before its records commit (the next decision counts on them; they commit in order, or
    these and every later one of the same generation fail). then: records built from where
    the broker put these, written in the same transaction."""
    return TRANSACTIONS.enqueue(partition, decided_under(partition), records, then)


def decided_under(partition: int) -> int:
    """The producer generation this task's decision for partition is made under: what an
    owner remembers beyond its view (its own appends on their way) holds within one."""
    generation = (_generations_decided_under.get() or {}).get(partition)
    if generation is None:
        raise RuntimeError(f"write to partition {partition} outside KeyedState.deciding")
    return generation


async def run_processor(
    state: KeyedState, stream: faust.StreamT[bytes], apply: Apply, unnoted: frozenset[str] = frozenset()
) -> None:
    """Apply each record of state's log to its view, in order, and note the offset, except
    after records of the unnoted kinds: nobody waits for those, and noting costs a table
    write (and a changelog record) each."""
    async for event in stream.events():
        message = event.message
        if replayed(state, message.partition, message.offset):
            continue
        headers = {k: v.decode("utf-8", "replace") for k, v in (message.headers or [])}
        kind = headers.get(KIND_HEADER)
        try:
            if kind != BARRIER_KIND.decode():
                apply(state, str(event.key), event.value, headers, message.offset)
        except Exception:  # one unreadable record must not stop the log behind it
            log.exception("skipping %s record at %d/%d", state.name, message.partition, message.offset)
        if kind not in unnoted:
            state.table[f"{APPLIED}{message.partition}"] = str(message.offset).encode()


def replayed(state: KeyedState, partition: int, offset: int) -> bool:
    """Whether the view already reflects this record. After every rebalance Faust seeks each
    partition back to its last committed offset and hands over the records since once
    more; applying them again would take the view back in time for a moment (a read or a
    decision meanwhile sees an older state) and count additive records (agent usage) twice.
    The applied offset is in the same table, written after the record's own changes."""
    return offset <= state.applied_offset(partition)


def on_revoked(states: list[KeyedState]) -> Callable[..., Any]:
    async def revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        for state in states:
            state.forget({tp.partition for tp in revoked})

    return revoked
