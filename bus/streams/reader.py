"""Reading a token stream, on the conversation's owner.

A reader registers with the owner's live stream, which hands it every record the owner
writes once Kafka has it: no Kafka read per reader for live chunks. What was written
before the reader came (or by another owner) is read from Kafka, up to where the live
hand-over surely began; if the owner loses the conversation, the reader goes on from
Kafka. The reader puts chunks back in chunk_seq order whatever order they came in, drops
what comes twice, and reports a gap that does not fill within its gap timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.cluster.ownership import is_owner, owner_partition
from bus.conversations.models import ConversationRecord
from bus.kafka.context import BusContext
from bus.kafka.gateway import guarded
from bus.streams.models import Chunk, StreamEnd, stream_view_key
from bus.streams.service import Pushed, first_offset, live_stream
from tables.conversations import conversations

__all__ = ["Reorder", "follow"]

Event = tuple[str, dict[str, Any]]
MAX_GAPS_KEPT = 1000  # reported gaps a reader remembers, for chunks that come late
TICK_S = 0.05  # how often a reader with held chunks or a pending end looks at its gap timeout


@dataclass
class Reorder:
    """Puts chunks back in chunk_seq order, drops duplicates, and gives up on a gap after a
    timeout. A chunk that comes after its gap was reported is still sent, once, as a late
    event: overload delays a chunk, it does not lose it."""

    next_seq: int
    gap_timeout: float
    held: dict[int, Any] = field(default_factory=dict)
    gap_since: float | None = None  # a chunk is missing before held ones since then
    tail_since: float | None = None  # the end arrived with chunks still missing since then
    given_up: list[tuple[int, int]] = field(default_factory=list)  # gaps reported, oldest first
    late: dict[int, Any] = field(default_factory=dict)  # chunks of reported gaps, to send
    late_sent: set[int] = field(default_factory=set)

    def add(self, chunk: Chunk) -> None:
        seq = chunk.chunk_seq
        if seq >= self.next_seq:
            self.held.setdefault(seq, chunk.data)
        elif seq not in self.late_sent and any(low <= seq <= high for low, high in self.given_up):
            self.late.setdefault(seq, chunk.data)

    def give_up(self, low: int, high: int) -> Event:
        self.given_up.append((low, high))
        del self.given_up[:-MAX_GAPS_KEPT]
        return ("gap", {"from_chunk_seq": low, "to_chunk_seq": high})

    def ready(self, now: float) -> list[Event]:
        """Events to send now: late chunks, chunks in order, and a gap once it has waited
        long enough."""
        out: list[Event] = []
        for seq in sorted(self.late):
            out.append(("late", {"chunk_seq": seq, "data": self.late.pop(seq)}))
            self.late_sent.add(seq)
        while True:
            while self.next_seq in self.held:
                out.append(("chunk", {"chunk_seq": self.next_seq, "data": self.held.pop(self.next_seq)}))
                self.next_seq += 1
            if not self.held:
                self.gap_since = None
                return out
            self.gap_since = now if self.gap_since is None else self.gap_since
            if now - self.gap_since < self.gap_timeout:
                return out
            first = min(self.held)
            out.append(self.give_up(self.next_seq, first - 1))
            self.next_seq, self.gap_since = first, None

    def finish(self, last: int | None, now: float) -> tuple[list[Event], bool]:
        """At the stream's end: (events to send now, whether the stream is done). Chunks still
        missing get the gap timeout to arrive, then are reported as a gap."""
        out = self.ready(now)
        missing = last is not None and self.next_seq <= last
        if not missing and not self.held:
            return out, True
        self.tail_since = now if self.tail_since is None else self.tail_since
        if now - self.tail_since < self.gap_timeout:
            return out, False
        while self.held:  # give up on every gap before the held chunks
            first = min(self.held)
            out.append(self.give_up(self.next_seq, first - 1))
            self.next_seq = first
            out += self.ready(now)
        if last is not None and self.next_seq <= last:
            out.append(self.give_up(self.next_seq, last))
        return out, True


class StreamTail:
    """One stream's records read from Kafka (read_committed), from a given offset on."""

    def __init__(self, ctx: BusContext, conv_key: str, stream_id: str) -> None:
        self.tp = TopicPartition(conversations.kafka_topic, owner_partition(conv_key))
        self.key, self.stream_id = conv_key.encode(), stream_id
        self.consumer: AIOKafkaConsumer = ctx.gateway.new_reader(isolation_level="read_committed")

    async def start(self) -> None:
        await guarded(self.consumer.start())
        self.consumer.assign([self.tp])

    async def end_offset(self) -> int:
        return int((await guarded(self.consumer.end_offsets([self.tp])))[self.tp])

    def seek(self, offset: int) -> None:
        self.consumer.seek(self.tp, offset)

    async def position(self) -> int:
        return int(await self.consumer.position(self.tp))

    async def poll(self) -> list[Pushed]:
        batch = await guarded(self.consumer.getmany(self.tp, timeout_ms=int(TICK_S * 1000), max_records=1000))
        return [
            p
            for record in batch.get(self.tp, [])
            if (p := self.parse(record.key, record.value, record.offset))
        ]

    def parse(self, key: bytes | None, value: bytes | None, offset: int) -> Pushed | None:
        if key != self.key:
            return None
        parsed = ConversationRecord.model_validate_json(value or b"{}")
        if parsed.chunks is not None and parsed.chunks.stream_id == self.stream_id:
            return Pushed(offset=offset, chunks=parsed.chunks.chunks)
        if parsed.message is not None and parsed.message.kind == "stream_end":
            end = StreamEnd.model_validate(parsed.message.payload)
            return Pushed(offset=offset, end=end) if end.stream_id == self.stream_id else None
        return None

    async def stop(self) -> None:
        await self.consumer.stop()


class StreamReader:
    """One reader of a stream: takes records from the owner's hand-over or from Kafka, and
    turns them into events in chunk_seq order."""

    def __init__(self, ctx: BusContext, conv_key: str, stream_id: str, from_chunk: int, gap_timeout: float):
        self.ctx, self.conv_key, self.stream_id = ctx, conv_key, stream_id
        self.skey = stream_view_key(conv_key, stream_id)
        self.order = Reorder(from_chunk, gap_timeout)
        self.end: StreamEnd | None = None
        self.seen_offset = -1  # the last record of the stream it has, by offset
        self.moved = False  # the owner lost the conversation: read Kafka from now on
        self.tail: StreamTail | None = None
        self.tail_until: int | None = None  # read Kafka up to here, then only the hand-over
        self.feed: asyncio.Queue[Pushed] = asyncio.Queue()
        self.live = live_stream(self.skey)

    async def open(self) -> None:
        self.live.readers.add(self.feed)  # first: nothing written from now on can be missed
        start = first_offset(self.skey, self.live)
        if not is_owner(self.conv_key, conversations.topic):  # it moved since the request came
            self.moved = True
            self.live.readers.discard(self.feed)
            await self.read_kafka(start)
            return
        if start is not None:  # something was written before: read it from Kafka
            await self.read_kafka(start)
            # Everything acknowledged before the reader registered is below the end offset,
            # or is the owner's last write (an open transaction may hold the end offset back).
            assert self.tail is not None
            self.tail_until = max(await self.tail.end_offset(), (self.live.last_offset or -1) + 1)

    async def read_kafka(self, start: int | None) -> None:
        """Read the stream from Kafka at start (None: at the log's end)."""
        self.tail = StreamTail(self.ctx, self.conv_key, self.stream_id)
        await self.tail.start()
        self.tail.seek(start if start is not None else await self.tail.end_offset())

    async def close(self) -> None:
        self.live.readers.discard(self.feed)
        if self.tail is not None:
            await self.tail.stop()
            self.tail = None

    def take(self, item: Pushed) -> None:
        if item.offset is not None:
            self.seen_offset = max(self.seen_offset, item.offset)
        for chunk in item.chunks or ():
            self.order.add(chunk)
        self.end = self.end or item.end
        self.moved = self.moved or item.moved

    async def receive(self) -> None:
        """Take what arrives next: from Kafka while reading it, else from the owner."""
        if self.tail is not None:
            for item in await self.tail.poll():
                self.take(item)
            if self.tail_until is None or await self.tail.position() < self.tail_until:
                return
            await self.tail.stop()
            self.tail = self.tail_until = None
        pending = self.end is not None or bool(self.order.held)
        try:
            self.take(await asyncio.wait_for(self.feed.get(), TICK_S if pending else 1.0))
        except TimeoutError:
            return
        while not self.feed.empty():
            self.take(self.feed.get_nowait())
        if self.moved:
            self.live.readers.discard(self.feed)
            start = self.seen_offset + 1 if self.seen_offset >= 0 else first_offset(self.skey, self.live)
            await self.read_kafka(start)

    def events(self, now: float) -> tuple[list[Event], bool]:
        """What to send now, and whether the stream is done."""
        if self.end is None:
            return self.order.ready(now), False
        events, done = self.order.finish(self.end.last_chunk_seq, now)
        if done:
            events.append(("end", self.end.model_dump(mode="json")))
        return events, done


async def follow(
    ctx: BusContext, conv_key: str, stream_id: str, from_chunk: int, gap_timeout: float
) -> AsyncGenerator[list[Event], None]:
    """The stream's events in batches, from its first record on: chunk, gap, then end; an
    empty batch now and then (a keepalive). (Check the conversation exists first: this
    starts only when iterated.)"""
    reader = StreamReader(ctx, conv_key, stream_id, from_chunk, gap_timeout)
    try:
        await reader.open()
        quiet_since = time.monotonic()
        while True:
            await reader.receive()
            now = time.monotonic()
            events, done = reader.events(now)
            if events or now - quiet_since >= ctx.settings.timing.sse_keepalive:
                quiet_since = now
                yield events  # an empty batch lets the server notice a reader that went away
            if done:
                return
    finally:
        await reader.close()
