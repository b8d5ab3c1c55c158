"""Subscriptions: durable consumer groups with per-record ack, as the bus keeps and serves them."""

from __future__ import annotations

from typing import Literal

from agentbus_client.models.subscriptions import (
    AckRequest,
    AckResponse,
    DeadLetter,
    DeadLetterList,
    DeadLetterOrigin,
    Delivery,
    LagReport,
    NackRequest,
    NackResponse,
    PartitionLag,
    PullRequest,
    PullResponse,
    RedriveRequest,
    RedriveResponse,
    ReleaseRequest,
    ReleaseResponse,
    SeekRequest,
    SeekResponse,
    Subscription,
    SubscriptionList,
    SubscriptionSpec,
    subscription_key,
)
from pydantic import BaseModel

__all__ = [
    "AckRequest",
    "AckResponse",
    "DeadLetter",
    "DeadLetterList",
    "DeadLetterOrigin",
    "Delivery",
    "LagReport",
    "NackRequest",
    "NackResponse",
    "PartitionLag",
    "PullRequest",
    "PullResponse",
    "RedriveRequest",
    "RedriveResponse",
    "ReleaseRequest",
    "ReleaseResponse",
    "SeekRequest",
    "SeekResponse",
    "Subscription",
    "SubscriptionCommand",
    "SubscriptionList",
    "SubscriptionSpec",
    "subscription_key",
]


class SubscriptionCommand(BaseModel):
    """A change to subscription metadata, as a record on the subscription-commands topic."""

    op: Literal["create", "delete"]
    key: str
    subscription: Subscription | None = None
