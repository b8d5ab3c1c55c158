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

__all__ = ["JSON_CONTENT_TYPE", "Batch", "BatchResult", "DeliveredRecord", "Envelope", "PublishResult"]
