"""Pins what bus.kafka.faust_patches changes in faust-streaming and aiokafka: the private
names it wraps must still exist with the shapes it expects, and each wrapper must do
exactly its one change."""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import aiokafka.producer.sender as aiokafka_sender
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, IntervalTree
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.producer import ProducerBuffer

from bus.kafka import faust_patches
from bus.kafka.faust_patches import PROCESSOR_FETCH_MIN_BYTES, safe_seeks, tuned_consumer


def test_the_wrapped_private_methods_keep_their_signatures() -> None:
    seek = inspect.signature(inspect.unwrap(Recovery._seek_offsets))
    assert list(seek.parameters) == ["self", "consumer", "tps", "offsets", "title"]
    assert inspect.iscoroutinefunction(inspect.unwrap(Recovery._seek_offsets))
    build = inspect.signature(inspect.unwrap(AIOKafkaConsumerThread._create_worker_consumer))
    assert list(build.parameters) == ["self", "transport"]
    send = inspect.signature(inspect.unwrap(ProducerBuffer._send_pending))
    assert list(send.parameters) == ["self", "fut"]
    gap = inspect.signature(inspect.unwrap(Consumer._add_gap))
    assert list(gap.parameters) == ["self", "tp", "offset_from", "offset_to"]
    # the one caller, which passes the record just read as the gap's last offset
    assert "self._add_gap(tp, r_offset + 1, offset)" in inspect.getsource(Consumer._drain_messages)
    buffer = ProducerBuffer()
    assert isinstance(buffer.message_sent, asyncio.Event) and isinstance(buffer.pending, asyncio.Queue)


async def test_a_flush_waits_for_every_buffered_message_however_slow_the_producer() -> None:
    """faust's own flush returned after 0.1 s without a message leaving the buffer; the
    offset commit after it then covered view updates still in the buffer."""
    faust_patches.apply(0.0)
    published: list[int] = []

    async def publish_slowly(fut: Any, wait: bool) -> None:
        await asyncio.sleep(0.15)
        published.append(fut.n)

    channel = SimpleNamespace(publish_message=publish_slowly)
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
    await buffer.start()
    try:
        for n in range(3):
            buffer.put(SimpleNamespace(n=n, message=SimpleNamespace(channel=channel)))
        await buffer.flush()
        assert published == [0, 1, 2]
    finally:
        await buffer.stop()


async def test_aiokafka_consumer_has_the_private_fields_the_patch_sets() -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    for name in ("_isolation_level", "_fetch_min_bytes", "_fetch_max_wait_ms"):
        assert hasattr(consumer, name), name


class Built:
    _isolation_level = "read_uncommitted"
    _fetch_min_bytes = 1
    _fetch_max_wait_ms = 500


def test_tuned_consumer_reads_committed_and_leaves_fetching_alone_by_default() -> None:
    consumer = tuned_consumer(lambda _t, _tr: Built(), 0.0)(object(), object())
    assert consumer._isolation_level == "read_committed"
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (1, 500)


def test_tuned_consumer_fetches_in_batches_when_asked() -> None:
    consumer = tuned_consumer(lambda _t, _tr: Built(), 0.1)(object(), object())
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (PROCESSOR_FETCH_MIN_BYTES, 100)


async def test_safe_seeks_replaces_positions_that_are_not_offsets() -> None:
    seen: dict[Any, Any] = {}

    async def seek(_r: Any, _c: Any, tps: Any, offsets: Any, _title: str) -> None:
        seen.update({tp: offsets[tp] for tp in tps})

    tps = [TopicPartition("t", p) for p in range(4)]
    offsets = dict(zip(tps, [None, -7, -1, 42], strict=True))
    await safe_seeks(seek)(object(), object(), tps, offsets, "standby")
    assert [seen[tp] for tp in tps] == [-1, -1, -1, 42]


def test_apply_installs_each_patch_once() -> None:
    faust_patches.apply(0.0)
    faust_patches.apply(0.0)
    assert getattr(Recovery._seek_offsets, "patched", False)
    assert getattr(AIOKafkaConsumerThread._create_worker_consumer, "patched", False)
    assert getattr(ProducerBuffer._send_pending, "patched", False)
    assert ProducerBuffer.flush is faust_patches.drain
    assert getattr(Consumer._add_gap, "patched", False)
    assert aiokafka_sender.BACKOFF_OVERRIDE == faust_patches.NEXT_TRANSACTION_RETRY_S


def test_aiokafka_retries_a_concurrent_transaction_after_the_override() -> None:
    """The constant the patch sets is the one aiokafka's AddPartitionsToTxn handler
    returns on CONCURRENT_TRANSACTIONS (read at call time, so setting it takes effect)."""
    handler = inspect.getsource(aiokafka_sender.AddPartitionsToTxnHandler.handle_response)
    assert "ConcurrentTransactions" in handler and "return BACKOFF_OVERRIDE" in handler
    assert not getattr(
        Recovery._seek_offsets.__wrapped__ if hasattr(Recovery._seek_offsets, "__wrapped__") else None,
        "patched",
        False,
    )


async def commits_over_markers(add_gap: Any) -> list[int | None]:
    """Faust's consumer bookkeeping for records at offsets 10, 12, ..., 58 (a commit marker
    after each, as one record per transaction leaves), read and acked in order the way
    Consumer._drain_messages and Consumer.ack do; then the offsets five commits ask for."""
    consumer = SimpleNamespace(
        _acked=defaultdict(list),
        _acked_index=defaultdict(set),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None),
    )
    read = None
    for offset in range(10, 60, 2):
        if read is not None and offset - read > 1:
            await add_gap(consumer, "tp", read + 1, offset)
        read = offset
        consumer._acked_index["tp"].add(offset)
        consumer._acked["tp"].append(offset)
    consumer._committed_offset["tp"] = 10
    commits = []
    for _ in range(5):
        commits.append(Consumer._new_offset(consumer, "tp"))
        consumer._committed_offset["tp"] = commits[-1] or consumer._committed_offset["tp"]
    return commits


async def test_a_commit_passes_every_acked_record_between_transaction_markers() -> None:
    """Faust counted the record that ends a gap in the gap too: the committed offset then
    crawled one record per commit over a log written one record per transaction."""
    assert await commits_over_markers(inspect.unwrap(Consumer._add_gap)) == [13, 15, 17, 19, 21]
    patched = faust_patches.gaps_before(inspect.unwrap(Consumer._add_gap))
    assert await commits_over_markers(patched) == [59, None, None, None, None]


def gap_consumer(committed: int | None) -> SimpleNamespace:
    return SimpleNamespace(_gap=defaultdict(IntervalTree), _committed_offset=defaultdict(lambda: committed))


async def test_gaps_read_forward_are_noted_without_merging_the_tree(monkeypatch: Any) -> None:
    """Reading forward, every gap lies past the ones noted: the patch adds it as faust
    would (without the record that ends it, nothing at or below the committed offset) but
    never merges the whole tree, which faust did once per gap."""
    faust_way, patched = gap_consumer(20), gap_consumer(20)
    unpatched = inspect.unwrap(Consumer._add_gap)
    for start in range(11, 200, 2):  # records at even offsets, a marker after each
        await unpatched(faust_way, "tp", start, start)
    merges = []
    monkeypatch.setattr(IntervalTree, "merge_overlaps", lambda tree, *a, **k: merges.append(tree))
    add_gap = faust_patches.gaps_before(unpatched)
    for start in range(11, 200, 2):
        await add_gap(patched, "tp", start, start + 1)
    assert merges == []
    assert sorted(patched._gap["tp"]) == sorted(faust_way._gap["tp"])
    assert min(patched._gap["tp"]).begin == 21  # nothing at or below the committed offset


async def test_a_gap_read_again_after_a_seek_back_is_merged() -> None:
    consumer = gap_consumer(None)
    add_gap = faust_patches.gaps_before(inspect.unwrap(Consumer._add_gap))
    for start in (11, 13, 15):
        await add_gap(consumer, "tp", start, start + 1)
    await add_gap(consumer, "tp", 12, 16)  # 12..15 again, as one gap, after a seek back
    # faust's merge: the overlapping [13, 14) and [15, 16) joined [12, 16)
    assert sorted((i.begin, i.end) for i in consumer._gap["tp"]) == [(11, 12), (12, 16)]
