"""A stream record holds as many chunks as fit the payload limit, in order, at least one."""

from __future__ import annotations

import json

from bus.streams.models import Chunk
from bus.streams.service import fitting


def chunks(count: int, size: int) -> list[Chunk]:
    return [Chunk(chunk_seq=i, data="x" * size) for i in range(count)]


def test_everything_fits_one_record() -> None:
    taken, rest, value = fitting("s", chunks(10, 10), 10_000)
    assert [c.chunk_seq for c in taken] == list(range(10)) and rest == []
    assert [c["chunk_seq"] for c in json.loads(value)["chunks"]["chunks"]] == list(range(10))


def test_chunks_beyond_the_limit_wait_for_the_next_record() -> None:
    pending, records = chunks(50, 1000), []
    while pending:
        taken, pending, value = fitting("s", pending, 8_000)
        assert len(value) <= 8_000 and taken
        records.append([c.chunk_seq for c in taken])
    assert [seq for record in records for seq in record] == list(range(50))
    assert 7 <= len(records) <= 10  # about 7 chunks of 1000 bytes per 8000-byte record


def test_a_chunk_larger_than_the_limit_goes_alone() -> None:
    taken, rest, value = fitting("s", [*chunks(1, 5000), *chunks(2, 10)], 1000)
    assert [c.chunk_seq for c in taken] == [0] and len(rest) == 2 and len(value) > 1000
