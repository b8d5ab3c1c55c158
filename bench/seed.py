"""Seeding: standing conversations put into the bus through its own log, not its HTTP API.

The API creates a conversation at a few hundred a second on 2 shared cores at best (each
is decided by its owner and written in a Kafka transaction); a bench that needs 100,000 or
1,000,000 of them as standing work would spend most of its hour creating them. A
conversation *is* its records on the canonical conversations log (`PREFIX-conversations`):
the workers' processors apply every record to the conversations view (RocksDB,
changelogged), whoever wrote it. So the seeder

1. creates one template conversation through the API (`POST /v1/conversations`) and reads
   its `created` record back from the log: key, value and headers, as the bus wrote them;
2. produces one record per seeded conversation derived from it (the id in the key and the
   value replaced, nothing else: every seeded conversation is created "at" the template's
   time), with a plain producer (acks=all, 1 MiB batches, lingering, uncompressed) keyed by
   the conversation key, so Kafka's default partitioner (murmur2) puts each on its
   owner's partition, as the bus does;
3. waits until the fleet's consumer group (the Faust app's, named PREFIX) has committed
   past the last seeded record of every partition: its processors applied them all. Compared
   with the offset of that record, not with the log's end: a transaction's commit marker
   can hold the end past the last record for good.

Deleting goes the same way: the template is deleted through the API (`DELETE`), its
`deleted` record read back, and one record per seeded conversation derived from it. (An
owner keeps the next sequence number of a conversation it appended to in memory, which an
API delete drops and this does not: harmless while the ids are never used again.)

What it does not do that the API does: the owner decides nothing (no 409 for an id that
exists: the ids must be new, and the processor keeps the first `created` of a key), and
the owner's memory of a conversation (its next sequence number, whether it has read the
conversation's log tail under its producer generation) starts at the first request for
it, as after a worker restart. Progress is printed every 10 s; a fleet whose processors
commit nothing new for STALL_S seconds fails the wait (BenchError).

    from seed import Seeder   # as `python bench/NAME.py`
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, RecordMetadata

# bench/publish.py and the others: found next to this file when run as a script.
from conversations import request
from publish import NAMESPACE, TENANT, BenchError

__all__ = ["Seeded", "Seeder", "conversation_path"]

LOG = "conversations"  # the canonical conversations log: PREFIX-conversations
IN_FLIGHT = 20_000  # records handed to the producer before their acks are awaited
BATCH_BYTES = 1 << 20
LINGER_MS = 50
PROGRESS_S = 10.0
POLL_S = 1.0
STALL_S = 120.0  # the processors committing nothing new for this long fails the wait
READ_BACK_S = 10.0  # for the template's record to be read back

Headers = list[tuple[str, bytes]]


def conversation_path(conversation_id: str) -> str:
    return f"/v1/conversations/{NAMESPACE}/{TENANT}/{conversation_id}"


@dataclass(frozen=True)
class Seeded:
    """What one seeding did: records produced, how long that took, and how long after it
    the processors had applied them all."""

    what: str  # "created" or "deleted"
    records: int
    produce_s: float
    applied_s: float  # after the last record was acknowledged

    @property
    def per_s(self) -> float:
        return self.records / self.produce_s if self.produce_s > 0 else 0.0

    def describe(self) -> str:
        return (
            f"seeded {self.records:,} {self.what} records: produced in {self.produce_s:.1f} s "
            f"({self.per_s:,.0f}/s), applied by the fleet {self.applied_s:.1f} s later"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "records": self.records,
            "produce_s": round(self.produce_s, 2),
            "per_s": round(self.per_s, 1),
            "applied_s": round(self.applied_s, 2),
        }


@dataclass(frozen=True)
class Template:
    """A record the bus wrote for a conversation, to derive others' from."""

    key: str  # NAMESPACE/TENANT/ID
    value: dict[str, Any]
    headers: Headers

    def key_of(self, conversation_id: str) -> bytes:
        return f"{NAMESPACE}/{TENANT}/{conversation_id}".encode()

    def value_of(self, conversation_id: str) -> bytes:
        """The value with the conversation's id in place of the template's (a `created`
        record holds the conversation; a `deleted` one names nothing but its key)."""
        value = self.value
        if value.get("conversation") is not None:
            value = {**value, "conversation": {**value["conversation"], "id": conversation_id}}
        return json.dumps(value, separators=(",", ":")).encode()


class Seeder:
    """Creates and deletes conversations of NAMESPACE/TENANT through the conversations log."""

    def __init__(self, session: aiohttp.ClientSession, worker: str, bootstrap: str, prefix: str) -> None:
        self.session = session
        self.worker = worker
        self.bootstrap = bootstrap
        self.prefix = prefix  # the fleet's AGENTBUS_PREFIX: its log's name and its group's
        self.topic = f"{prefix}-{LOG}"
        self.template_id = f"seed-{time.time_ns():x}"
        self.created: Template | None = None

    async def create(self, ids: Sequence[str]) -> Seeded:
        """A conversation for each id (new ones), applied by the fleet once this returns.
        The first call also creates the template conversation (its id: template_id)."""
        if self.created is None:
            body = {"namespace": NAMESPACE, "tenant": TENANT, "id": self.template_id}
            self.created = await self.written_by("POST", "/v1/conversations", body, "created")
        return await self.seed("created", self.created, ids)

    async def delete(self, ids: Sequence[str]) -> Seeded:
        """Delete the conversations of ids, and the template (through the API) first."""
        if self.created is None:
            raise BenchError("nothing seeded: no template to delete")
        deleted = await self.written_by("DELETE", conversation_path(self.template_id), None, "deleted")
        return await self.seed("deleted", deleted, ids)

    async def seed(self, what: str, template: Template, ids: Sequence[str]) -> Seeded:
        records = ((template.key_of(i), template.value_of(i), template.headers) for i in ids)
        began = time.monotonic()
        last = await produce(self.bootstrap, self.topic, records, what)
        produced = time.monotonic()
        await self.wait_applied(last, len(ids))
        return Seeded(what, len(ids), produced - began, time.monotonic() - produced)

    async def written_by(self, method: str, path: str, body: Any, kind: str) -> Template:
        """The record of `kind` a request about the template conversation put on the log."""
        key = f"{NAMESPACE}/{TENANT}/{self.template_id}"
        found = await record_written(
            self.bootstrap, self.topic, key.encode(), lambda: self.call(method, path, body)
        )
        value = json.loads(found.value or b"{}")
        if value.get("kind") != kind:
            raise BenchError(f"the template's last record is {value.get('kind')!r}, not {kind!r}")
        return Template(key, value, list(found.headers))

    async def call(self, method: str, path: str, body: Any) -> None:
        status, answer = await request(self.session, method, self.worker + path, body)
        if status not in (200, 201):
            raise BenchError(f"{method} {path}: HTTP {status}: {answer}")

    async def wait_applied(self, last: dict[int, int], records: int) -> None:
        """Until the fleet's group committed past `last` (partition -> offset) everywhere."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            began = time.monotonic()
            next_report, progress, progressed = began + PROGRESS_S, -1, began
            while True:
                committed = await admin.list_consumer_group_offsets(self.prefix)
                done = {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == self.topic}
                # A committed offset is the next one to read: past o once o is applied.
                behind = {p: o + 1 - done.get(p, 0) for p, o in last.items() if done.get(p, 0) <= o}
                if not behind:
                    return
                now, left = time.monotonic(), sum(behind.values())
                if left != progress:
                    progress, progressed = left, now
                elif now - progressed > STALL_S:
                    raise BenchError(
                        f"the fleet applied nothing of the seeded records for {STALL_S:.0f} s: "
                        f"{left:,} offsets behind on {len(behind)} partitions of {self.topic}"
                    )
                if now >= next_report:
                    next_report += PROGRESS_S
                    print(
                        f"  applying: ~{left:,} of {records:,} records to go, {now - began:.0f} s",
                        flush=True,
                    )
                await asyncio.sleep(POLL_S)
        finally:
            await admin.close()


async def produce(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes, Headers]], what: str
) -> dict[int, int]:
    """Produce the records (key, value, headers), keyed: the default partitioner places
    them. Returns the offset of the last one in each partition."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=LINGER_MS,
        max_batch_size=BATCH_BYTES,
        max_request_size=4 * BATCH_BYTES,
    )
    await producer.start()
    last: dict[int, int] = {}
    count, began = 0, time.monotonic()
    next_report = began + PROGRESS_S
    try:
        pending: list[asyncio.Future[RecordMetadata]] = []
        for key, value, headers in records:
            pending.append(await producer.send(topic, value, key=key, headers=headers))
            if len(pending) >= IN_FLIGHT:
                count += note_last(last, await asyncio.gather(*pending))
                pending = []
                if time.monotonic() >= next_report:
                    next_report += PROGRESS_S
                    print(
                        f"  produced {count:,} {what} records, {time.monotonic() - began:.0f} s", flush=True
                    )
        note_last(last, await asyncio.gather(*pending))
    finally:
        await producer.stop()
    return last


def note_last(last: dict[int, int], acked: Sequence[RecordMetadata]) -> int:
    for meta in acked:
        last[meta.partition] = max(last.get(meta.partition, -1), meta.offset)
    return len(acked)


async def record_written(
    bootstrap: str, topic: str, key: bytes, call: Callable[[], Awaitable[None]]
) -> ConsumerRecord[bytes, bytes]:
    """The last record with `key` that `call` put on the topic: read from the end offsets
    before the call to the ones after it (committed records only, as the processors read)."""
    tps = [TopicPartition(topic, p) for p in range(await partition_count(bootstrap, topic))]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(tps)
        before = await consumer.end_offsets(tps)
        await call()
        after = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, before[tp])
        found: ConsumerRecord[bytes, bytes] | None = None
        deadline = time.monotonic() + READ_BACK_S
        pending = {tp for tp in tps if after[tp] > before[tp]}
        while pending and time.monotonic() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for batch in batches.values():
                found = next((r for r in reversed(batch) if r.key == key), found)
            for tp in list(pending):
                if await consumer.position(tp) >= after[tp]:
                    pending.discard(tp)
        if found is None:
            raise BenchError(f"no record of {key.decode()} on {topic}: is --prefix the fleet's?")
        return found
    finally:
        await consumer.stop()


async def partition_count(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] or not described["partitions"]:
        raise BenchError(f"no topic {topic}: is --prefix the fleet's AGENTBUS_PREFIX?")
    return len(described["partitions"])
