"""A global table written only by a command processor, read everywhere.

Each command topic has one partition and one processor; the processor applies a command
to the table and then records the command's offset under APPLIED_KEY in the same table.
Both writes share the table's single changelog partition, so a worker whose copy shows
offset N has every change up to command N. That gives a request read-your-writes: it
sends a command, waits until its own worker's copy shows that offset, then reads.

The processor never writes its local store directly: it only appends to the changelog,
and every worker (the processor's own included) applies the changelog in order. A local
write would be overtaken a moment later by the replay of older changelog records, and a
reader in between would see the table go back in time.

Values are pydantic models stored as JSON. A parsed value is cached with the bytes it was
parsed from and used only while the store still holds those bytes: the store is read on
every lookup, so the cache never answers for a store that changed under it. (It used to
be dropped on changelog events only, but a rebalance can change what the store answers
without any: faust closes and reopens a global table's partition store when the
assignment moves it between active and standby, and a miss cached then outlived it.)
"""

from __future__ import annotations

import logging
from typing import TypeVar

import faust
from pydantic import BaseModel

from bus.errors import Timeout
from bus.kafka.table_store import stored_value, table_store_options
from bus.settings import get_settings
from bus.state.waits import wait_until

__all__ = ["CommandedTable", "command_topic"]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

APPLIED_KEY = ""  # never a valid entity key


class CommandedTable:
    def __init__(self, app: faust.App, name: str, help: str) -> None:
        self._parsed: dict[str, tuple[bytes, BaseModel]] = {}  # key -> (raw, parsed from raw)
        # partitions=1 and recovery_buffer_size=1 follow faust-streaming's advice for
        # global tables shared by several workers (otherwise recovery can loop).
        self.table = app.GlobalTable(
            name,
            key_type=str,
            value_type=bytes,
            partitions=1,
            recovery_buffer_size=1,
            # Every worker follows every changelog partition live, also one it owns.
            synchronize_all_active_partitions=True,
            options=table_store_options(),
            help=help,
        )
        self._last_marked = -1

    def get(self, key: str, model: type[M]) -> M | None:
        """The value under key as the store holds it now, parsed (once per stored value)."""
        if key == APPLIED_KEY:
            return None
        raw = stored_value(self.table, key)
        if raw is None:
            self._parsed.pop(key, None)
            return None
        hit = self._parsed.get(key)
        if hit is not None and hit[0] == raw and isinstance(hit[1], model):
            return hit[1]
        value = model.model_validate_json(raw)
        self._parsed[key] = (raw, value)
        return value

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.table.keys() if k != APPLIED_KEY and k.startswith(prefix))

    def put(self, key: str, value: BaseModel) -> None:
        self.table.send_changelog(0, key, value.model_dump_json(by_alias=True).encode())

    def remove(self, key: str) -> None:
        self.table.send_changelog(0, key, None, value_serializer="raw")

    def mark_applied(self, offset: int) -> None:
        self.table.send_changelog(0, APPLIED_KEY, str(offset).encode())
        self._last_marked = offset

    async def settle(self, next_offset: int, timeout: float) -> None:
        """Before the processor applies command next_offset: wait until this worker's copy
        reflects every earlier command (those it applied itself, and those a previous
        owner of the command log applied). Offsets can have gaps, so give up after
        timeout and go on with what the copy has."""
        target = max(self._last_marked, next_offset - 1)
        try:
            await wait_until(lambda: self.applied_offset() >= target, timeout, "the table to settle")
        except Timeout:
            log.warning("table %s did not reach offset %d; applying on what it has", self.table.name, target)

    def reflects(self, offset: int) -> bool:
        """Whether command offset is applied already (by this worker, or in its copy)."""
        return offset <= max(self._last_marked, self.applied_offset())

    def applied_offset(self) -> int:
        """Offset of the last command this worker's copy reflects (-1: none yet)."""
        raw = stored_value(self.table, APPLIED_KEY)
        return -1 if raw is None else int(raw)


def command_topic(app: faust.App, noun: str) -> faust.TopicT:
    """The single-partition log of one table's commands, e.g. '{prefix}-topic-commands'."""
    return app.topic(
        f"{get_settings().prefix}-{noun}-commands",
        partitions=1,
        internal=True,  # created before the consumer first subscribes (BusApp.on_first_start)
        key_type=str,
        value_type=bytes,
        value_serializer="raw",  # the payload is a command's JSON, parsed by pydantic
    )
