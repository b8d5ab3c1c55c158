"""Commands to a command processor, and reading a commanded table without lag.

A worker's copy of a commanded table trails the command log by a few ms. Two tools:
send_and_wait() gives a request read-your-writes for its own command; catch_up() waits
until this worker's copy holds every command in the log so far, so that a refusal
(404, 409) is never decided on a copy that lags another worker's write.
"""

from __future__ import annotations

import faust
from pydantic import BaseModel

from bus.kafka.context import BusContext
from bus.state.command_table import CommandedTable
from bus.state.waits import wait_until

__all__ = ["catch_up", "send_and_wait"]


async def send_and_wait(
    ctx: BusContext, topic: faust.TopicT, key: str, command: BaseModel, table: CommandedTable
) -> None:
    """Append a command and wait until this worker's copy of the table reflects it.

    Timeout (504, retriable) when the processor did not apply it in time; the command
    is in the log by then and will still be applied.
    """
    sent = await topic.send(key=key, value=command.model_dump_json(by_alias=True).encode())
    offset = (await sent).offset
    await wait_until(
        lambda: table.applied_offset() >= offset, ctx.settings.timing.command_timeout, f"command for {key}"
    )


async def catch_up(ctx: BusContext, topic: faust.TopicT, table: CommandedTable) -> None:
    """Wait until this worker's copy reflects every command appended to the log so far."""
    end = await ctx.gateway.end_offset(topic.get_topic_name(), 0)
    await wait_until(
        lambda: table.applied_offset() >= end - 1, ctx.settings.timing.command_timeout, "the command log"
    )
