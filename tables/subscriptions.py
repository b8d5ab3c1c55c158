"""Subscription metadata: a global table, so every worker holds every subscription locally.

Every pull, ack and nack looks its subscription up, so the lookup never leaves the
worker. Written only by workers.subscriptions; recovered from its Kafka changelog at
start-up. Keys are subscription_key(namespace, tenant, id).
"""

from __future__ import annotations

from bus.kafka.faust_app import app
from bus.state.command_table import CommandedTable
from bus.subscriptions.models import Subscription

subscriptions = CommandedTable(
    app, "subscriptions", help="Subscription metadata by key (namespace/tenant/id)."
)


def get_subscription(key: str) -> Subscription | None:
    return subscriptions.get(key, Subscription)


def all_subscriptions() -> list[Subscription]:
    found = (subscriptions.get(key, Subscription) for key in subscriptions.keys())
    return [s for s in found if s is not None]
