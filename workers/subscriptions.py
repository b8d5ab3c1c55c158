"""Applies subscription commands to the subscription table, in log order.

The commands topic has one partition, so every metadata change goes through one
worker at a time and the log order decides races: the first create of a subscription
wins, a later one changes nothing (its request sees another value and answers 409).
Delivery is at least once; applying a command twice changes nothing.
"""

from __future__ import annotations

import logging

import faust

from bus.kafka.faust_app import app
from bus.state.command_apply import apply_commands
from bus.subscriptions.models import SubscriptionCommand
from bus.subscriptions.store import get_subscription
from tables.subscriptions import subscription_commands, subscriptions

__all__: list[str] = []

log = logging.getLogger(__name__)


@app.agent(subscription_commands)  # type: ignore[untyped-decorator]
async def apply_subscription_commands(stream: faust.StreamT[bytes]) -> None:
    await apply_commands(stream, SubscriptionCommand, subscriptions, apply)


def apply(command: SubscriptionCommand) -> None:
    if command.op == "create" and command.subscription is not None:
        if get_subscription(command.key) is None:
            subscriptions.put(command.key, command.subscription)
            log.info("subscription %s created", command.key)
    elif command.op == "delete":
        subscriptions.remove(command.key)
        log.info("subscription %s deleted", command.key)
