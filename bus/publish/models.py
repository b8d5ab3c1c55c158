"""Publish: the envelope a caller sends and the receipt the bus returns."""

from __future__ import annotations

from agentbus_client.models.publish import (
    JSON_CONTENT_TYPE,
    Batch,
    BatchResult,
    DeliveredRecord,
    Envelope,
    PublishResult,
)
from pydantic import BaseModel

__all__ = [
    "JSON_CONTENT_TYPE",
    "Batch",
    "BatchResult",
    "DeliveredRecord",
    "Envelope",
    "Expired",
    "PublishResult",
    "PublishedOnce",
]


class PublishedOnce(BaseModel):
    """A record published with a caller-given message id (the publish-ids view): the
    receipt a retry gets back while the duplicate window lasts."""

    receipt: PublishResult
    at: int  # unix ms of the publish


class Expired(BaseModel):
    """A publish-ids record: drop the key's receipt if it is older than before (unix ms)."""

    before: int
