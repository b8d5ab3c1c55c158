"""Token streams on a conversation, run by the conversation's owner.

Chunks are records of the conversation's log (same key, same order, same replay) but
take no sequence number of their own; the stream's end is an envelope that does. Chunk
writes use group commit: while one record of a stream is being written, chunks that
arrive wait and go together in the next record, so a fast model is paced by Kafka's
acknowledgements, not by one durable write per token. chunk_seq ranges stay exact: a
record lists the chunks it holds.

Once Kafka has acknowledged a record, the owner hands its chunks to the stream's readers
in memory (bus.streams.reader); Kafka is read only for what was written before a reader
came, and after the owner changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bus import metrics, tracing
from bus.clock import now_ms
from bus.cluster.ownership import owner_partition
from bus.conversations.models import ChunkRecord, ConversationRecord, ConversationView
from bus.conversations.service import Envelope, append_envelope, current_view, open_view, view_of
from bus.errors import StreamCancelled, StreamEnded
from bus.kafka.context import BusContext
from bus.kafka.gateway import OutgoingRecord
from bus.streams.models import (
    Chunk,
    ChunksReceipt,
    ChunksSpec,
    StreamEnd,
    StreamEndSpec,
    StreamView,
    stream_view_key,
)
from bus.tools.service import agent_usage, require_open
from tables.conversations import conversations

__all__ = [
    "Pushed",
    "add_chunks",
    "check_open",
    "end_stream",
    "enqueue",
    "first_offset",
    "fitting",
    "forget",
    "live_stream",
    "refuse_if_over",
    "sweep",
]


@dataclass
class Pushed:
    """What the owner hands its readers once Kafka has it: a record's chunks, the end, or
    word that this worker no longer owns the stream (readers then read Kafka themselves)."""

    offset: int | None = None
    chunks: list[Chunk] | None = None
    end: StreamEnd | None = None
    moved: bool = False


@dataclass
class LiveStream:
    """The owner's state of a stream being written or read."""

    pending: list[Chunk] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    writing: bool = False
    writer: asyncio.Task[None] | None = None  # kept: a task nobody references may be collected
    first_offset: int | None = None  # of the stream's first record, before the view has it
    last_offset: int | None = None  # of the last record this worker wrote
    ending: bool = False  # the end is being written: later chunks would land after it
    end: StreamEnd | None = None
    readers: set[asyncio.Queue[Pushed]] = field(default_factory=set)
    used_at: float = field(default_factory=time.monotonic)

    def push(self, item: Pushed) -> None:
        for feed in self.readers:
            feed.put_nowait(item)

    def idle(self) -> bool:
        return not (self.readers or self.writing or self.pending or self.ending)


_live: dict[str, LiveStream] = {}
IDLE_FORGET_S = 600.0  # a stream nobody wrote or read for this long leaves memory (the view keeps it)
ENDED_FORGET_S = 60.0  # an ended one sooner, once the view surely has its end


def live_stream(skey: str) -> LiveStream:
    found = _live.get(skey)
    if found is None:
        view = conversations.get(skey, StreamView)
        found = _live[skey] = LiveStream(end=view.end if view is not None else None)
    found.used_at = time.monotonic()
    return found


def first_offset(skey: str, live: LiveStream) -> int | None:
    """Where the stream's first record is, if it has one yet."""
    view = conversations.get(skey, StreamView)
    return view.first_offset if view is not None else live.first_offset


def sweep() -> None:
    """Forget streams that ended, or went quiet, and that nobody reads or writes."""
    now = time.monotonic()
    for skey in [
        k
        for k, live in _live.items()
        if live.idle() and now - live.used_at > (IDLE_FORGET_S if live.end is None else ENDED_FORGET_S)
    ]:
        del _live[skey]


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
    await check_open(ctx, conv_key, spec.sender)
    chunks = spec.all_chunks()
    # The record that carries them may be written by an earlier request's writer (group
    # commit): this span is where the chunks waited, the produce span is in that trace.
    with tracing.span("stream write", attributes={"agentbus.stream_id": spec.stream_id}):
        await enqueue(ctx, conv_key, spec.stream_id, chunks)
    return ChunksReceipt(stream_id=spec.stream_id, accepted=len(chunks))


async def check_open(ctx: BusContext, conv_key: str, sender: str | None) -> None:
    """The conversation takes envelopes (from sender, if named): 404, 409 or 403 if not."""
    if sender is not None:
        await open_view(ctx, conv_key, sender)
    else:
        require_open(await current_view(ctx, conv_key))


def enqueue(ctx: BusContext, conv_key: str, stream_id: str, chunks: list[Chunk]) -> asyncio.Future[None]:
    """Put chunks in the stream's next record; the future is done once that record is in Kafka."""
    skey = stream_view_key(conv_key, stream_id)
    live = live_stream(skey)
    refuse_if_over(skey, live.end)
    if live.ending:
        raise StreamEnded(f"Stream {stream_id} is ending", {"status": "ending"})
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    live.pending += chunks
    live.waiters.append(done)
    done.add_done_callback(chunks_written(time.perf_counter()))
    if not live.writing:
        live.writing = True
        live.writer = asyncio.create_task(write(ctx, conv_key, stream_id, live))
    return done


def chunks_written(accepted: float) -> Callable[[asyncio.Future[None]], None]:
    """Observe, once the write is done, how long its chunks took to reach Kafka and the
    stream's live readers (which get them right before the writer is answered)."""

    def observe(done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is None:
            metrics.STREAM_CHUNK_LATENCY.observe(time.perf_counter() - accepted)

    return observe


async def write(ctx: BusContext, conv_key: str, stream_id: str, live: LiveStream) -> None:
    """Write what is pending, again and again, until nothing is (group commit)."""
    linger = ctx.settings.timing.stream_coalesce
    try:
        while live.pending:
            if linger > 0:
                await asyncio.sleep(linger)
            chunks, rest, value = fitting(stream_id, live.pending, ctx.settings.limits.max_payload_bytes)
            waiters = live.waiters if not rest else []
            live.pending = rest
            live.waiters = [] if not rest else live.waiters
            headers = [("bus.kind", b"stream_chunks"), ("bus.stream_id", stream_id.encode())]
            record = OutgoingRecord(conversations.kafka_topic, value, conv_key.encode(), headers)
            try:
                produced = await ctx.gateway.produce([record], [owner_partition(conv_key)])
            except Exception as exc:  # every request with chunks in this or a later part fails
                failed = waiters + live.waiters
                live.pending, live.waiters = [], []
                for waiter in failed:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            if live.first_offset is None:
                live.first_offset = produced[0].offset
            live.last_offset = produced[0].offset
            live.push(Pushed(offset=produced[0].offset, chunks=chunks))
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
    finally:
        live.writing = False


def fitting(stream_id: str, chunks: list[Chunk], limit: int) -> tuple[list[Chunk], list[Chunk], bytes]:
    """As many chunks as fit one record of at most limit bytes (at least one), the rest for
    the next, and the record's value. (Serialized whole first: splitting is rare.)"""
    take = len(chunks)
    while True:
        at = now_ms()
        record = ConversationRecord(
            kind="chunks", chunks=ChunkRecord(stream_id=stream_id, chunks=chunks[:take], at=at), at=at
        )
        value = record.model_dump_json().encode()
        if take == 1 or len(value) <= limit:
            return chunks[:take], chunks[take:], value
        take = max(1, min(take - 1, take * limit // len(value)))


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
    live.push(Pushed(end=end))
    return end


def forget(partitions: set[int]) -> None:
    """Partitions this worker lost: their readers go on from Kafka."""
    for skey in [
        k for k in _live if owner_partition(k.removeprefix("stream:").rsplit("/", 1)[0]) in partitions
    ]:
        _live.pop(skey).push(Pushed(moved=True))
