"""The table reads of bus.kafka.table_store, on faust's own RocksDB store: prefixed_items
reads one key prefix of some partitions by a seek, and must find what a pass over the whole
table finds, nothing of another partition or prefix; stored_value reads a key in one store
lookup where faust's table.get takes two, and answers what table.get answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from bus.kafka.table_store import prefixed_items, stored_value


def table_with(tmp_path: Path, entries: dict[int, dict[str, bytes]]) -> Any:
    """A faust RocksDB table of two partitions, written partition by partition as faust writes."""
    app = faust.App("prefix-test", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("view", key_type=str, value_type=bytes, partitions=2)
    store = table.data
    for partition, items in entries.items():
        database = store._db_for_partition(partition)
        for key, value in items.items():
            database[store._encode_key(key)] = store._encode_value(value)
    return table


ENTRIES = {
    0: {"call:a1": b'{"n":1}', "call:b2": b'{"n":2}', "conv-1": b"{}", "calm": b"{}", "call": b"{}"},
    1: {"call:c3": b'{"n":3}', "\x00applied:1": b"7", "callx": b"{}", "call:\u00e9": b'{"n":4}'},
}


def test_one_partition_gives_its_own_keys_of_the_prefix_only(tmp_path: Path) -> None:
    table = table_with(tmp_path, ENTRIES)
    assert dict(prefixed_items(table, "call:", {0})) == {"call:a1": b'{"n":1}', "call:b2": b'{"n":2}'}
    assert dict(prefixed_items(table, "call:", {1})) == {"call:c3": b'{"n":3}', "call:\u00e9": b'{"n":4}'}


def test_every_partition_gives_what_a_pass_over_all_keys_finds(tmp_path: Path) -> None:
    table = table_with(tmp_path, ENTRIES)
    everything = {k: v for items in ENTRIES.values() for k, v in items.items() if k.startswith("call:")}
    assert dict(prefixed_items(table, "call:", {0, 1})) == everything
    assert dict(prefixed_items(table, "conv-", {0, 1, 5})) == {"conv-1": b"{}"}  # 5: not held here


def test_a_stored_value_is_what_table_get_answers_in_one_lookup(tmp_path: Path) -> None:
    table = table_with(tmp_path, ENTRIES)
    store, lookups = table.data, []
    read = store._get

    def counted(key: bytes) -> Any:
        lookups.append(key)
        return read(key)

    def contains(key: bytes) -> bool:
        return counted(key) is not None

    store._get, store._contains = counted, contains
    for key in ["call:a1", "\x00applied:1", "absent"]:
        lookups.clear()
        expected = table.get(key)
        faust_lookups = len(lookups)
        lookups.clear()
        assert stored_value(table, key) == expected
        assert len(lookups) == 1
        assert faust_lookups >= 1 + (expected is not None)  # faust asks twice for a key it holds
