"""Every change the bus makes to faust-streaming's and aiokafka's internals, in one place.

Each patch wraps one private method; tests/unit/test_faust_patches.py pins the private
names and signatures they rely on, so a faust or aiokafka upgrade that moves them fails
a test instead of silently undoing a fix.

- Worker consumer: read committed records only (approval decisions are Kafka
  transactions; an aborted one must never be applied), and optionally let the broker
  hold a fetch to gather records (AGENTBUS_PROCESSOR_FETCH_WAIT).
- Recovery: never seek a changelog partition to None or below -1 (read it from its
  start instead); faust-streaming passed a standby partition without a position as
  None, aiokafka refused it, and the worker crashed.
- Producer buffer: a flush drains it completely. faust-streaming's flush returned as soon
  as no message left the buffer for 0.1 s (a busy event loop), with table changelog
  records still in it; the offset commit that follows a flush (on every commit and on a
  revocation) then covered records whose view updates were not in the changelog yet, and
  the next owner of the partition resumed past them with a view that never had them.
- Transactional producers: a transaction that follows a commit retries its first
  AddPartitionsToTxn after 2 ms instead of aiokafka's 20 ms. The broker answers
  CONCURRENT_TRANSACTIONS until it has written the previous commit's markers (KAFKA-5477),
  which takes a few ms here; the 20 ms wait made every partition's back-to-back
  transactions (conversation appends, idempotent publishes, acks) 4-8x slower
  (figures in docs/benchmarks.md).
- Offset commits over transaction markers: a gap in a partition's offsets (a commit
  marker after every transaction) is counted without the record that ends it. Faust
  counted that record in the gap as well as in its acks; the duplicate broke the run of
  consecutive offsets a commit advances over, so a log written one record per
  transaction (heartbeats, conversations, subscriptions' events) had its committed
  offset crawl one record per commit, hundreds behind its view, and every rebalance
  handed those records over again.
  A gap past every gap noted is added without faust's merge of the whole interval tree
  (nothing can overlap it), which cost a processor O(gaps) per record between commits.
- Assignment: which partitions this worker actively holds, read from the assignor.
- Web server: the aiohttp runner Faust's web driver serves through is one the bus builds
  (bus/http/connections.py guards its connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka.producer.sender as aiokafka_sender
import faust
from aiohttp.web import Application, AppRunner
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.producer import ProducerBuffer

__all__ = [
    "NEXT_TRANSACTION_RETRY_S",
    "PROCESSOR_FETCH_MIN_BYTES",
    "active_partitions",
    "apply",
    "assignment_token",
    "counted_sends",
    "drain",
    "gaps_before",
    "safe_seeks",
    "tuned_consumer",
    "use_web_runner",
]

log = logging.getLogger(__name__)
NEXT_TRANSACTION_RETRY_S = 0.002  # aiokafka: 0.02
PROCESSOR_FETCH_MIN_BYTES = 65_536  # the broker holds a processor's fetch until this much, or the wait
Build = Callable[[Any, Any], Any]
Seek = Callable[[Any, Any, Any, Any, str], Awaitable[None]]
Send = Callable[[Any, Any], Awaitable[None]]
AddGap = Callable[[Any, Any, int, int], Awaitable[None]]
SENDING = "_bus_sending"  # on a ProducerBuffer: messages taken off its queue, not handed to the producer yet


def apply(fetch_wait_s: float) -> None:
    """Install the patches (once per process)."""
    build = AIOKafkaConsumerThread._create_worker_consumer
    if not getattr(build, "patched", False):
        AIOKafkaConsumerThread._create_worker_consumer = tuned_consumer(build, fetch_wait_s)
    seek = Recovery._seek_offsets
    if not getattr(seek, "patched", False):
        Recovery._seek_offsets = safe_seeks(seek)
    aiokafka_sender.BACKOFF_OVERRIDE = NEXT_TRANSACTION_RETRY_S
    send = ProducerBuffer._send_pending
    if not getattr(send, "patched", False):
        ProducerBuffer._send_pending = counted_sends(send)
        ProducerBuffer.flush = drain
    add_gap = Consumer._add_gap
    if not getattr(add_gap, "patched", False):
        Consumer._add_gap = gaps_before(add_gap)


def tuned_consumer(build: Build, fetch_wait_s: float) -> Build:
    """Faust's worker consumer, built as before, then set to read committed records and
    (when fetch_wait_s > 0) to fetch in batches. aiokafka reads both when it starts."""
    wait_ms = int(fetch_wait_s * 1000)

    @functools.wraps(build)
    def build_tuned(thread: Any, transport: Any) -> Any:
        consumer = build(thread, transport)
        consumer._isolation_level = "read_committed"
        if wait_ms > 0:
            consumer._fetch_min_bytes = PROCESSOR_FETCH_MIN_BYTES
            consumer._fetch_max_wait_ms = wait_ms
        return consumer

    build_tuned.patched = True  # type: ignore[attr-defined]
    return build_tuned


def safe_seeks(seek: Seek) -> Seek:
    """Recovery's seek, with any position that is not an offset (None, below -1) replaced by
    -1 (the partition's start): applying a changelog again is harmless, a crash is not."""

    @functools.wraps(seek)
    async def seek_safely(recovery: Any, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        for tp in tps:
            if not isinstance(offsets[tp], int) or offsets[tp] < -1:
                log.info(
                    "recovery would seek %s (%s) to %r: reading it from its start", tp, title, offsets[tp]
                )
                offsets[tp] = -1
        await seek(recovery, consumer, tps, offsets, title)

    seek_safely.patched = True  # type: ignore[attr-defined]
    return seek_safely


def counted_sends(send: Send) -> Send:
    """The buffer's send of one message to the producer, counted while it runs: the message
    is off the queue by then, and a flush must wait for it too."""

    @functools.wraps(send)
    async def send_counted(buffer: Any, message: Any) -> None:
        setattr(buffer, SENDING, getattr(buffer, SENDING, 0) + 1)
        try:
            await send(buffer, message)
        finally:
            setattr(buffer, SENDING, getattr(buffer, SENDING) - 1)

    send_counted.patched = True  # type: ignore[attr-defined]
    return send_counted


async def drain(buffer: Any) -> None:
    """Return once every message put in the buffer is with the producer (whose own flush
    the caller awaits next); raise, like faust, if the buffer stops with messages in it."""
    while buffer.size or getattr(buffer, SENDING, 0):
        if buffer.state != "running" and buffer.size:
            raise RuntimeError("Cannot flush: Producer not Running")
        buffer.message_sent.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(buffer.message_sent.wait(), timeout=0.1)


def gaps_before(add_gap: AddGap) -> AddGap:
    """The consumer's gap bookkeeping, given the offsets between the last record read and
    the record just read: faust passes the new record's offset as the gap's last."""

    @functools.wraps(add_gap)
    async def add_gap_before(consumer: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        gaps = consumer._gap[tp]
        if gaps and offset_from < gaps.end():  # a gap read again after a seek back: faust merges
            await add_gap(consumer, tp, offset_from, offset_to - 1)
            return
        # Past every gap noted: nothing to merge. Faust merged the whole tree anyway, once
        # per gap, rebuilding it each time (6% of a processor's time on a transactional log).
        committed = consumer._committed_offset[tp]
        first = offset_from if committed is None else max(offset_from, committed + 1)
        if first < offset_to:
            gaps.addi(first, offset_to)

    add_gap_before.patched = True  # type: ignore[attr-defined]
    return add_gap_before


def active_partitions(app: faust.App, topic_name: str) -> frozenset[int]:
    """The partitions of topic_name this worker actively holds since the last rebalance."""
    return frozenset(app.assignor._assignment.actives.get(topic_name, ()))


def assignment_token(app: faust.App) -> object:
    """An object that changes with every rebalance (a new assignment each time)."""
    return app.assignor._assignment


def use_web_runner(app: faust.App, make_runner: Callable[[Application], AppRunner]) -> None:
    """Serve app's web server through the runner make_runner builds for its aiohttp
    application. Faust's aiohttp driver builds an AppRunner when the driver is made
    (`Web._runner`) and starts its site from it in start_server; call this before the
    worker starts."""
    app.web._runner = make_runner(app.web.web_app)
