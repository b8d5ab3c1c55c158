"""API keys: who may do what, on which tenant's topics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from agentbus_client.models.common import Labels, Name, StrEnum, StrictModel
from agentbus_client.models.quotas import Quota

TOPIC_GLOB = r"^[a-z0-9*?-]{1,63}$"


class Action(StrEnum):
    READ = "read"  # subscribe, pull, replay
    WRITE = "write"  # publish
    MANAGE = "manage"  # topics, subscriptions, schemas of the tenant


class Grant(StrictModel):
    """Actions on the tenant's topics whose names match a glob (* and ?)."""

    topics: str = Field("*", pattern=TOPIC_GLOB)
    actions: list[Action] = Field(min_length=1)


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
