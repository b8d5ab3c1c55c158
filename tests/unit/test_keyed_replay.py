"""Views never go back: records Faust hands over again after a rebalance (it seeks each
partition to its last committed offset) are not applied a second time, neither by a keyed
state's processor nor by a command processor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

from pydantic import BaseModel

from bus.state.command_apply import apply_commands
from bus.state.command_table import CommandedTable
from bus.state.keyed import APPLIED, KeyedState, run_processor


class View:
    """What run_processor uses of a KeyedState: its name and table."""

    name = "test"

    def __init__(self) -> None:
        self.table: dict[str, bytes] = {}

    def applied_offset(self, partition: int) -> int:
        raw = self.table.get(f"{APPLIED}{partition}")
        return -1 if raw is None else int(raw)


class Stream:
    def __init__(self, offsets: list[tuple[int, int]], value: bytes = b"{}") -> None:
        self.offsets, self.value = offsets, value

    async def events(self) -> AsyncIterator[Any]:
        for partition, offset in self.offsets:
            message = SimpleNamespace(partition=partition, offset=offset, headers=[])
            yield SimpleNamespace(message=message, key="k", value=self.value)


async def test_records_handed_over_again_are_not_applied_twice() -> None:
    view = View()
    applied: list[int] = []

    def apply(state: KeyedState, key: str, value: bytes, headers: dict[str, str], offset: int) -> None:
        applied.append(offset)

    first = [(0, n) for n in range(6)] + [(1, 0), (1, 1)]
    replay_after_rebalance = [(0, n) for n in range(2, 9)] + [(1, 0), (1, 1), (1, 2)]
    for offsets in (first, replay_after_rebalance):
        await run_processor(cast(KeyedState, view), cast(Any, Stream(offsets)), apply)
    assert applied == [0, 1, 2, 3, 4, 5, 0, 1, 6, 7, 8, 2]
    assert view.applied_offset(0) == 8 and view.applied_offset(1) == 2


class Commands:
    """What apply_commands uses of a CommandedTable."""

    def __init__(self) -> None:
        self.marked = -1

    def reflects(self, offset: int) -> bool:
        return offset <= self.marked

    async def settle(self, next_offset: int, timeout: float) -> None:
        pass

    def mark_applied(self, offset: int) -> None:
        self.marked = offset


class Command(BaseModel):
    n: int


async def test_commands_handed_over_again_are_not_applied_twice() -> None:
    """A key created (offset 1) then revoked (offset 2): replaying from offset 1 after a
    rebalance must not show the key as created again."""
    table = Commands()
    applied: list[int] = []
    for offsets in ([(0, 0), (0, 1), (0, 2)], [(0, 1), (0, 2), (0, 3)]):
        stream = cast(Any, Stream(offsets, value=b'{"n": 0}'))
        await apply_commands(stream, Command, cast(CommandedTable, table), lambda c: applied.append(c.n))
    assert len(applied) == 4 and table.marked == 3
