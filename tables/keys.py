"""API keys by key id, and tenant quotas: a global table, so every worker authenticates
and meters locally and a revocation reaches every worker within milliseconds. Written
only by workers.keys."""

from __future__ import annotations

from bus.kafka.faust_app import app
from bus.state.command_table import CommandedTable, command_topic

__all__ = ["key_commands", "keys"]

keys = CommandedTable(app, "keys", help="API keys by key id (secrets only as hashes).")
key_commands = command_topic(app, "key")
