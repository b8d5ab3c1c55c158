"""How the workers' tables are stored: RocksDB, one database per table partition."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import faust

from bus.settings import get_settings

__all__ = ["prefixed_items", "stored_value", "table_store_options"]

TABLE_MEMTABLES = 2  # per table partition: one being written, one being flushed


def table_store_options() -> dict[str, int]:
    """RocksDB options for every table's partitions, for faust's Table(options=...).

    faust's defaults (64 MiB memtables three deep and a 2 GiB block cache, each) are sized
    for one big table per process; a worker has about 80 table partitions, and each kept
    its writes in memory until 64 MiB of them had gathered."""
    s = get_settings()
    return {
        "write_buffer_size": s.table_write_buffer_bytes,
        "max_write_buffer_number": TABLE_MEMTABLES,
        "block_cache_size": s.table_block_cache_bytes,
    }


def prefixed_items(table: faust.Table, prefix: str, partitions: Iterable[int]) -> Iterator[tuple[Any, Any]]:
    """The items of table's local partitions whose key starts with prefix, each partition
    read from a seek to the prefix: a pass over the whole table (a million conversations)
    held the event loop for 12 s. faust stores a str key JSON-encoded, and RocksDB keeps
    keys in byte order, so one prefix's keys lie together. (faust's store keeps a database
    per partition in `_dbs`; tests/unit/test_table_store.py pins it.)"""
    store = table.data
    databases = getattr(store, "_dbs", None)
    if databases is None:  # another kind of store: a pass over its items
        yield from ((k, v) for k, v in table.items() if isinstance(k, str) and k.startswith(prefix))
        return
    start = json.dumps(prefix).encode()[:-1]  # the opening quote and the prefix, not the closing one
    for partition in partitions:
        database = databases.get(partition)
        if database is None:
            continue
        for raw_key, raw_value in database.items(from_key=start):
            if not raw_key.startswith(start):
                break
            yield store._decode_key(raw_key), store._decode_value(raw_value)


def stored_value(table: faust.Table, key: Any) -> Any:
    """table's value under key, or None, in one store lookup: faust's own `table.get`
    asks the store whether it holds the key and then reads it (two RocksDB lookups and two
    key encodings), and tells the table's sensors, which nothing here reads. The bus's
    tables have no default value, so a missing key is simply None."""
    return table.data.get(key)
