"""API keys: who may do what, on which tenant's topics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from agentbus_client.models.keys import ApiKeyView, KeyList, KeySpec, KeyWithSecret
from pydantic import BaseModel, Field

from bus.http.access import Grant
from bus.keys.quota_models import Quota, TenantQuota

__all__ = ["ApiKey", "ApiKeyView", "KeyCommand", "KeyList", "KeySpec", "KeyWithSecret"]


class ApiKey(BaseModel):
    """A key as the bus keeps it: only a hash of the secret, never the secret."""

    id: str
    name: str
    role: Literal["admin", "tenant"]
    namespace: str | None = None
    tenant: str | None = None
    grants: list[Grant] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    quota: Quota | None = None
    created_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    secret_hash: str = Field(description="sha256 of the secret; never returned by the API")


class KeyCommand(BaseModel):
    op: Literal["put", "put_tenant_quota"]
    key: ApiKey | None = None
    tenant_quota: TenantQuota | None = None
