"""Typed reads of the subscriptions table (tables/subscriptions.py), shared by service and processor."""

from __future__ import annotations

from bus.subscriptions.models import Subscription
from tables.subscriptions import subscriptions

__all__ = ["all_subscriptions", "get_subscription"]


def get_subscription(key: str) -> Subscription | None:
    return subscriptions.get(key, Subscription)


def all_subscriptions() -> list[Subscription]:
    found = (subscriptions.get(key, Subscription) for key in subscriptions.keys())
    return [s for s in found if s is not None]
