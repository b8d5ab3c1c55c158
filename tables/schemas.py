"""The schema registry: subjects and their versions, in one global table.

Every worker holds the whole registry, so validating a payload never leaves the worker.
Keys: 's|ns/tenant/subject' -> SubjectMeta, 'v|ns/tenant/subject|00000007' -> SchemaVersion.
Written only by workers.schemas.
"""

from __future__ import annotations

from bus.kafka.faust_app import app
from bus.state.command_table import CommandedTable, command_topic

__all__ = ["schema_commands", "schemas"]

schemas = CommandedTable(app, "schemas", help="Schema subjects and versions.")
schema_commands = command_topic(app, "schema")
