"""How the workers' tables are stored: RocksDB, one database per table partition."""

from __future__ import annotations

from bus.settings import get_settings

__all__ = ["table_store_options"]

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
