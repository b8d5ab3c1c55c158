"""Applies key commands (create, rotate, revoke are all 'put' of the whole key), in log order."""

from __future__ import annotations

import logging

import faust

from bus.faust_app import app
from bus.models.keys import KeyCommand
from bus.settings import get_settings
from tables.keys import keys
from workers.commands import apply_commands

log = logging.getLogger(__name__)

key_commands = app.topic(
    f"{get_settings().prefix}-key-commands",
    partitions=1,
    internal=True,
    key_type=str,
    value_type=bytes,
    value_serializer="raw",
)


@app.agent(key_commands)  # type: ignore[untyped-decorator]
async def apply_key_commands(stream: faust.StreamT[bytes]) -> None:
    await apply_commands(stream, KeyCommand, keys, apply)


def apply(command: KeyCommand) -> None:
    keys.put(command.key.id, command.key)
    log.info("key %s stored (revoked: %s)", command.key.id, command.key.revoked_at is not None)
