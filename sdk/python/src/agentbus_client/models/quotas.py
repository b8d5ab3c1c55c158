"""Quotas: rates a key or a tenant may publish and receive at, fleet-wide."""

from __future__ import annotations

from pydantic import Field

from agentbus_client.models.common import StrictModel


class Quota(StrictModel):
    """Per-second limits; a missing limit is no limit."""

    publish_records_per_s: int | None = Field(None, ge=1)
    publish_bytes_per_s: int | None = Field(None, ge=1)
    deliver_records_per_s: int | None = Field(None, ge=1)
    deliver_bytes_per_s: int | None = Field(None, ge=1)


class TenantQuota(StrictModel):
    namespace: str
    tenant: str
    quota: Quota
