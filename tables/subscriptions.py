"""Subscription metadata: a global table, so every worker holds every subscription locally.

Every pull, ack and nack looks its subscription up, so the lookup never leaves the
worker. Written only by workers.subscriptions; recovered from its Kafka changelog at
start-up. Keys are subscription_key(namespace, tenant, id).
"""

from __future__ import annotations

from bus.kafka.faust_app import app
from bus.state.command_table import CommandedTable, command_topic

__all__ = ["subscription_commands", "subscriptions"]

subscriptions = CommandedTable(
    app, "subscriptions", help="Subscription metadata by key (namespace/tenant/id)."
)
subscription_commands = command_topic(app, "subscription")
