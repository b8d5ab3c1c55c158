"""Quotas: rates a key or a tenant may publish and receive at, fleet-wide."""

from __future__ import annotations

from agentbus_client.models.quotas import Quota, TenantQuota
from pydantic import Field

from bus.wire import StrictModel

__all__ = ["Quota", "TenantQuota", "UsageReport"]


class UsageReport(StrictModel):
    """What one worker was asked for and admitted in one second, sent to the usage topic
    every ~100 ms (an empty one once a second when idle: the worker is alive)."""

    worker: str
    window: int = Field(description="unix second")
    usage: dict[str, int] = Field(description="'subject|dimension' -> amount admitted since the last report")
    asked: dict[str, int] = Field(
        default_factory=dict, description="'subject|dimension' -> amount asked (admitted or not) since then"
    )
