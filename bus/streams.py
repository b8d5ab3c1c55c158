"""Token streams on a conversation, run by the conversation's owner.

Chunks are records of the conversation's log (same key, same order, same replay) but
take no sequence number of their own; the stream's end is an envelope that does. Chunk
writes use group commit: while one record of a stream is being written, chunks that
arrive wait and go together in the next record, so a fast model is paced by Kafka's
acknowledgements, not by one durable write per token. chunk_seq ranges stay exact: a
record lists the chunks it holds.

A reader gets the chunks in chunk_seq order whatever order they were written in: it holds
back what arrives early, drops what arrives twice, and reports a gap that does not fill
within its gap timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from bus.context import BusContext
from bus.conversations import Envelope, append_envelope, current_view, open_view, view_of
from bus.errors import StreamCancelled, StreamEnded
from bus.kafka import guarded
from bus.models.conversations import ConversationRecord, ConversationView
from bus.models.streams import (
    Chunk,
    ChunkRecord,
    ChunksReceipt,
    ChunksSpec,
    StreamEnd,
    StreamEndSpec,
    StreamView,
    stream_view_key,
)
from bus.ownership import owner_partition
from bus.tools import agent_usage, require_open
from tables.conversations import conversations


@dataclass
class LiveStream:
    """The owner's state of a stream being written."""

    pending: list[Chunk] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    writing: bool = False
    writer: asyncio.Task[None] | None = None  # kept: a task nobody references may be collected
    first_offset: int | None = None  # of the stream's first record, before the view has it
    ending: bool = False  # the end is being written: later chunks would land after it
    end: StreamEnd | None = None


_live: dict[str, LiveStream] = {}


def now_ms() -> int:
    return int(time.time() * 1000)


def live_stream(skey: str) -> LiveStream:
    found = _live.get(skey)
    if found is None:
        view = conversations.get(skey, StreamView)
        found = _live[skey] = LiveStream(end=view.end if view is not None else None)
    return found


def refuse_if_over(skey: str, end: StreamEnd | None) -> None:
    if end is None:
        return
    if end.status == "cancelled":
        raise StreamCancelled(
            f"Stream {skey.split('/')[-1]} was cancelled", {"by": end.by, "error": end.error}
        )
    raise StreamEnded(f"Stream {skey.split('/')[-1]} has ended", {"status": end.status})


async def add_chunks(ctx: BusContext, conv_key: str, spec: ChunksSpec) -> ChunksReceipt:
    """Queue the chunks for the stream's next record and answer once that record is in Kafka."""
    if spec.sender is not None:
        await open_view(ctx, conv_key, spec.sender)
    else:
        require_open(await current_view(ctx, conv_key))
    skey = stream_view_key(conv_key, spec.stream_id)
    live = live_stream(skey)
    refuse_if_over(skey, live.end)
    if live.ending:
        raise StreamEnded(f"Stream {spec.stream_id} is ending", {"status": "ending"})
    chunks = spec.all_chunks()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    live.pending += chunks
    live.waiters.append(done)
    if not live.writing:
        live.writing = True
        live.writer = asyncio.create_task(write(ctx, conv_key, spec.stream_id, live))
    await done
    return ChunksReceipt(stream_id=spec.stream_id, accepted=len(chunks))


async def write(ctx: BusContext, conv_key: str, stream_id: str, live: LiveStream) -> None:
    """Write what is pending, again and again, until nothing is (group commit)."""
    linger = ctx.settings.timing.stream_coalesce
    try:
        while live.pending:
            if linger > 0:
                await asyncio.sleep(linger)
            chunks, rest = fitting(live.pending, ctx.settings.limits.max_payload_bytes)
            waiters = live.waiters if not rest else []
            live.pending = rest
            live.waiters = [] if not rest else live.waiters
            record = ConversationRecord(
                kind="chunks",
                chunks=ChunkRecord(stream_id=stream_id, chunks=chunks, at=now_ms()),
                at=now_ms(),
            )
            headers = {"bus.kind": "stream_chunks", "bus.stream_id": stream_id}
            try:
                produced = await ctx.gateway.produce(
                    [conversations.outgoing(conv_key, record, headers)], [owner_partition(conv_key)]
                )
            except Exception as exc:  # every request with chunks in this or a later part fails
                failed = waiters + live.waiters
                live.pending, live.waiters = [], []
                for waiter in failed:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            if live.first_offset is None:
                live.first_offset = produced[0].offset
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
    finally:
        live.writing = False


def fitting(chunks: list[Chunk], limit: int) -> tuple[list[Chunk], list[Chunk]]:
    """As many chunks as fit one record (at least one), and the rest for the next."""
    size = 0
    for i, chunk in enumerate(chunks):
        size += len(json.dumps(chunk.data)) + 32
        if size > limit and i > 0:
            return chunks[:i], chunks[i:]
    return chunks, []


async def flushed(live: LiveStream) -> None:
    while live.writing or live.pending:
        await asyncio.sleep(0.002)


async def end_stream(ctx: BusContext, conv_key: str, spec: StreamEndSpec, by: str = "producer") -> StreamEnd:
    """Write the stream's terminal envelope (after every chunk written before it)."""
    skey = stream_view_key(conv_key, spec.stream_id)
    async with conversations.deciding(ctx, conv_key):
        view = await (open_view(ctx, conv_key, spec.sender) if spec.sender else view_of(ctx, conv_key))
        if by == "producer":
            require_open(view)
        live = live_stream(skey)
        refuse_if_over(skey, live.end)
        live.ending = True
        try:
            await flushed(live)
            return await write_end(ctx, conv_key, view, spec, live, by)
        finally:
            live.ending = False


async def write_end(
    ctx: BusContext, conv_key: str, view: ConversationView, spec: StreamEndSpec, live: LiveStream, by: str
) -> StreamEnd:
    end = StreamEnd.model_validate({**spec.model_dump(exclude={"sender"}), "by": by, "at": now_ms()})
    envelope = Envelope(
        "stream_end",
        spec.sender or by,
        end.model_dump(mode="json"),
        message_id=f"stream-end-{spec.stream_id}",
        headers={"bus.stream_id": spec.stream_id},
    )
    namespace, tenant, _ = conv_key.split("/")
    spent = [agent_usage(namespace, tenant, spec.sender, spec.usage)] if spec.usage and spec.sender else []
    await append_envelope(ctx, conv_key, view, envelope, spent)
    live.end = end
    return end


def forget(partitions: set[int]) -> None:
    for skey in [
        k for k in _live if owner_partition(k.removeprefix("stream:").rsplit("/", 1)[0]) in partitions
    ]:
        del _live[skey]


# -- reading ---------------------------------------------------------------------------------


@dataclass
class Reorder:
    """Puts chunks back in chunk_seq order, drops duplicates, and gives up on a gap after a timeout."""

    next_seq: int
    gap_timeout: float
    held: dict[int, Any] = field(default_factory=dict)
    gap_since: float | None = None  # a chunk is missing before held ones since then
    tail_since: float | None = None  # the end arrived with chunks still missing since then

    def add(self, chunk: Chunk) -> None:
        if chunk.chunk_seq >= self.next_seq:
            self.held.setdefault(chunk.chunk_seq, chunk.data)

    def ready(self, now: float) -> list[tuple[str, dict[str, Any]]]:
        """Events to send now: chunks in order, and a gap once it has waited long enough."""
        out: list[tuple[str, dict[str, Any]]] = []
        while True:
            while self.next_seq in self.held:
                out.append(("chunk", {"chunk_seq": self.next_seq, "data": self.held.pop(self.next_seq)}))
                self.next_seq += 1
            if not self.held:
                self.gap_since = None
                return out
            self.gap_since = self.gap_since or now
            if now - self.gap_since < self.gap_timeout:
                return out
            first = min(self.held)
            out.append(("gap", {"from_chunk_seq": self.next_seq, "to_chunk_seq": first - 1}))
            self.next_seq, self.gap_since = first, None

    def finish(self, last: int | None, now: float) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """At the stream's end: (events to send now, whether the stream is done). Chunks still
        missing get the gap timeout to arrive, then are reported as a gap."""
        out = self.ready(now)
        missing = last is not None and self.next_seq <= last
        if not missing and not self.held:
            return out, True
        self.tail_since = self.tail_since or now
        if now - self.tail_since < self.gap_timeout:
            return out, False
        while self.held:  # give up on every gap before the held chunks
            first = min(self.held)
            out.append(("gap", {"from_chunk_seq": self.next_seq, "to_chunk_seq": first - 1}))
            self.next_seq = first
            out += self.ready(now)
        if last is not None and self.next_seq <= last:
            out.append(("gap", {"from_chunk_seq": self.next_seq, "to_chunk_seq": last}))
        return out, True


async def follow(
    ctx: BusContext, conv_key: str, stream_id: str, from_chunk: int, gap_timeout: float
) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """The stream's events, from its first record on: chunk, gap, then end. (Check the
    conversation exists first: this starts reading only when iterated.)"""
    skey = stream_view_key(conv_key, stream_id)
    tp = TopicPartition(conversations.kafka_topic, owner_partition(conv_key))
    consumer = ctx.gateway.new_reader(isolation_level="read_committed")
    await guarded(consumer.start())
    try:
        consumer.assign([tp])
        end_offset = (await guarded(consumer.end_offsets([tp])))[tp]
        view = conversations.get(skey, StreamView)
        written = _live.get(skey)
        if view is not None:
            consumer.seek(tp, view.first_offset)
        elif written is not None and written.first_offset is not None:  # written, not applied yet
            consumer.seek(tp, written.first_offset)
        else:  # not started: it will begin after the current end
            consumer.seek(tp, end_offset)
        order = Reorder(from_chunk, gap_timeout)
        wanted, end, quiet_since = conv_key.encode(), None, time.monotonic()
        while True:
            if time.monotonic() - quiet_since >= ctx.settings.timing.sse_keepalive:
                quiet_since = time.monotonic()
                yield "keepalive", {}  # lets the server notice a reader that went away
            batch = await guarded(consumer.getmany(tp, timeout_ms=50, max_records=1000))
            for record in batch.get(tp, []):
                if record.key != wanted:
                    continue
                parsed = ConversationRecord.model_validate_json(record.value or b"{}")
                if parsed.chunks is not None and parsed.chunks.stream_id == stream_id:
                    for chunk in parsed.chunks.chunks:
                        order.add(chunk)
                elif parsed.message is not None and parsed.message.kind == "stream_end":
                    candidate = StreamEnd.model_validate(parsed.message.payload)
                    end = candidate if candidate.stream_id == stream_id else end
            now = time.monotonic()
            if end is None:
                for event in order.ready(now):
                    quiet_since = now
                    yield event
                continue
            events, done = order.finish(end.last_chunk_seq, now)
            for event in events:
                yield event
            if done:
                yield "end", json.loads(end.model_dump_json())
                return
    finally:
        await consumer.stop()
