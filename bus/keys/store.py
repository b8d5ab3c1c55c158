"""Typed reads of the keys table (tables/keys.py): what the service and the processor share."""

from __future__ import annotations

from bus.keys.models import ApiKey
from bus.keys.quota_models import TenantQuota
from tables.keys import keys

__all__ = ["all_keys", "get_key", "get_tenant_quota", "tenant_quota_key"]


def get_key(key_id: str) -> ApiKey | None:
    return keys.get(key_id, ApiKey)


TENANT_PREFIX = "tenant|"  # tenant quotas share the table; key ids are hex and never collide


def all_keys() -> list[ApiKey]:
    found = (keys.get(k, ApiKey) for k in keys.keys() if not k.startswith(TENANT_PREFIX))
    return [k for k in found if k is not None]


def tenant_quota_key(namespace: str, tenant: str) -> str:
    return f"{TENANT_PREFIX}{namespace}/{tenant}"


def get_tenant_quota(namespace: str, tenant: str) -> TenantQuota | None:
    return keys.get(tenant_quota_key(namespace, tenant), TenantQuota)
