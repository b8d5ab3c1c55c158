"""Topic metadata: a global table, so every worker holds every topic locally.

Publish looks a topic up on every request, so the lookup never leaves the worker.
Written only by workers.topics; recovered from its Kafka changelog at start-up.
"""

from __future__ import annotations

from bus.kafka.faust_app import app
from bus.state.command_table import CommandedTable, command_topic

__all__ = ["topic_commands", "topics"]

topics = CommandedTable(app, "topics", help="Topic metadata by topic id (namespace/tenant/name).")
topic_commands = command_topic(app, "topic")
