"""API keys: who may do what, on which tenant's topics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from bus.http.access import Grant
from bus.keys.quota_models import Quota, TenantQuota
from bus.wire import Labels, Name, StrictModel

__all__ = ["ApiKey", "ApiKeyView", "KeyCommand", "KeyList", "KeySpec", "KeyWithSecret"]


class KeySpec(StrictModel):
    """The body of POST /v1/keys."""

    name: str = Field(min_length=1, max_length=128)
    role: Literal["admin", "tenant"]
    namespace: Name | None = None
    tenant: Name | None = None
    grants: list[Grant] = Field(default_factory=list, max_length=64)
    labels: Labels = Field(default_factory=dict)
    quota: Quota | None = Field(None, description="Fleet-wide rates for this key; none: unlimited")

    @model_validator(mode="after")
    def scoped_when_tenant(self) -> KeySpec:
        if self.role == "tenant" and (self.namespace is None or self.tenant is None):
            raise ValueError("a tenant key needs namespace and tenant")
        if self.role == "admin" and (self.namespace or self.tenant or self.grants):
            raise ValueError("an admin key has no namespace, tenant or grants")
        return self


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


class ApiKeyView(BaseModel):
    """A key as the API shows it."""

    id: str
    name: str
    role: Literal["admin", "tenant"]
    namespace: str | None
    tenant: str | None
    grants: list[Grant]
    labels: dict[str, str]
    quota: Quota | None
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class KeyWithSecret(ApiKeyView):
    """Answer of create and rotate: the only time the secret is shown."""

    secret: str = Field(description="Send as 'Authorization: Bearer <secret>'. Shown once.")


class KeyList(BaseModel):
    keys: list[ApiKeyView]


class KeyCommand(BaseModel):
    op: Literal["put", "put_tenant_quota"]
    key: ApiKey | None = None
    tenant_quota: TenantQuota | None = None
