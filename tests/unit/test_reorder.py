"""The stream reader's reordering: in order, once, gaps reported after their timeout."""

from __future__ import annotations

from bus.streams.models import Chunk
from bus.streams.reader import Reorder


def seqs(events: list[tuple[str, dict[str, object]]]) -> list[tuple[str, object]]:
    return [(name, data.get("chunk_seq", data.get("from_chunk_seq"))) for name, data in events]


def test_out_of_order_and_repeated_chunks_come_out_in_order_once() -> None:
    order = Reorder(0, 1.0)
    for seq in (2, 0, 0, 1, 2, 4, 3):
        order.add(Chunk(chunk_seq=seq, data=seq))
    assert seqs(order.ready(0.0)) == [("chunk", 0), ("chunk", 1), ("chunk", 2), ("chunk", 3), ("chunk", 4)]
    order.add(Chunk(chunk_seq=1, data="late duplicate"))
    assert order.ready(0.1) == []


def test_a_gap_waits_its_timeout_then_is_skipped() -> None:
    order = Reorder(0, 1.0)
    order.add(Chunk(chunk_seq=0, data=0))
    order.add(Chunk(chunk_seq=2, data=2))
    assert seqs(order.ready(10.0)) == [("chunk", 0)]
    assert order.ready(10.5) == []
    order.add(Chunk(chunk_seq=1, data=1))  # filled in time
    assert seqs(order.ready(10.9)) == [("chunk", 1), ("chunk", 2)]
    order.add(Chunk(chunk_seq=5, data=5))
    assert order.ready(20.0) == []
    assert seqs(order.ready(21.0)) == [("gap", 3), ("chunk", 5)]


def test_the_end_waits_for_missing_chunks_then_reports_them() -> None:
    order = Reorder(0, 0.3)
    for seq in (0, 1, 3, 6):
        order.add(Chunk(chunk_seq=seq, data=seq))
    events, done = order.finish(7, 100.0)
    assert seqs(events) == [("chunk", 0), ("chunk", 1)] and not done
    events, done = order.finish(7, 100.31)
    assert done
    assert seqs(events) == [("gap", 2), ("chunk", 3), ("gap", 4), ("chunk", 6), ("gap", 7)]


def test_a_complete_stream_ends_at_once() -> None:
    order = Reorder(0, 5.0)
    order.add(Chunk(chunk_seq=0, data="only"))
    events, done = order.finish(0, 1.0)
    assert done and seqs(events) == [("chunk", 0)]


def test_a_chunk_that_comes_after_its_gap_was_reported_is_sent_late_once() -> None:
    order = Reorder(0, 1.0)
    for seq in (0, 4):
        order.add(Chunk(chunk_seq=seq, data=seq))
    assert seqs(order.ready(0.0)) == [("chunk", 0)]
    assert seqs(order.ready(1.5)) == [("gap", 1), ("chunk", 4)]
    for seq in (2, 2, 0, 5, 9):  # 2 is in the gap (twice), 0 was sent, 5 is next, 9 is ahead
        order.add(Chunk(chunk_seq=seq, data=f"d{seq}"))
    assert order.ready(1.6) == [
        ("late", {"chunk_seq": 2, "data": "d2"}),
        ("chunk", {"chunk_seq": 5, "data": "d5"}),
    ]
    order.add(Chunk(chunk_seq=2, data="again"))
    order.add(Chunk(chunk_seq=3, data="d3"))
    assert seqs(order.ready(1.7)) == [("late", 3)]
    assert order.ready(1.8) == []
