"""The loop every command processor shares: settle, parse, apply, mark applied."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import faust
from pydantic import BaseModel, ValidationError

from bus.state.command_table import CommandedTable

__all__ = ["apply_commands"]

C = TypeVar("C", bound=BaseModel)
log = logging.getLogger(__name__)
SETTLE_TIMEOUT = 5.0  # seconds; see CommandedTable.settle


async def apply_commands(
    stream: faust.StreamT[bytes], model: type[C], table: CommandedTable, apply: Callable[[C], None]
) -> None:
    """Apply each command in log order, on a table that reflects every earlier one.

    At least once: after a crash a command may be applied again, so apply() must be
    idempotent. Commands the table already reflects are skipped: Faust hands over the
    records since the last committed offset again after every rebalance, and applying an
    older command again (a key created, then revoked) would show its older state until
    the later one was applied again. A record this version cannot read is logged and skipped rather than
    stopping the log behind it.
    """
    async for event in stream.events():
        if table.reflects(event.message.offset):
            continue  # handed over again after a rebalance: applying it would go back in time
        await table.settle(event.message.offset, SETTLE_TIMEOUT)
        try:
            command = model.model_validate_json(event.value)
        except ValidationError:
            log.error("skipping unreadable %s: %.200r", model.__name__, event.value)
        else:
            apply(command)
        table.mark_applied(event.message.offset)
