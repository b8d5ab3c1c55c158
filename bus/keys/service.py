"""API keys: create, list, rotate and revoke. Changes go through the key-commands log."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from bus.errors import KeyNotFound
from bus.kafka.context import BusContext
from bus.keys.auth import hash_secret, new_secret
from bus.keys.models import ApiKey, ApiKeyView, KeyCommand, KeySpec, KeyWithSecret
from bus.keys.quota_models import Quota, TenantQuota
from bus.keys.store import all_keys, get_key, get_tenant_quota
from bus.state.command_log import send_and_wait
from tables.keys import key_commands
from tables.keys import keys as keys_table

__all__ = [
    "create_key",
    "list_keys",
    "require_key",
    "revoke_key",
    "rotate_key",
    "set_key_quota",
    "set_tenant_quota",
    "tenant_quota",
    "view",
]


def view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView.model_validate(key.model_dump(exclude={"secret_hash"}))


def with_secret(key: ApiKey, secret: str) -> KeyWithSecret:
    return KeyWithSecret.model_validate({**key.model_dump(exclude={"secret_hash"}), "secret": secret})


def list_keys() -> list[ApiKeyView]:
    return [view(k) for k in sorted(all_keys(), key=lambda k: k.created_at)]


def require_key(key_id: str) -> ApiKey:
    key = get_key(key_id)
    if key is None:
        raise KeyNotFound(f"Key {key_id} does not exist", {"key_id": key_id})
    return key


async def create_key(ctx: BusContext, spec: KeySpec) -> KeyWithSecret:
    key_id = secrets.token_hex(8)
    secret = new_secret(key_id)
    key = ApiKey(
        id=key_id,
        name=spec.name,
        role=spec.role,
        namespace=spec.namespace,
        tenant=spec.tenant,
        grants=spec.grants,
        labels=spec.labels,
        quota=spec.quota,
        created_at=datetime.now(UTC),
        secret_hash=hash_secret(secret),
    )
    await store(ctx, key)
    return with_secret(key, secret)


async def rotate_key(ctx: BusContext, key_id: str) -> KeyWithSecret:
    """A new secret; the old one stops working on every worker as the change replicates."""
    key = require_key(key_id)
    secret = new_secret(key_id)
    rotated = key.model_copy(update={"secret_hash": hash_secret(secret), "rotated_at": datetime.now(UTC)})
    await store(ctx, rotated)
    return with_secret(rotated, secret)


async def revoke_key(ctx: BusContext, key_id: str) -> ApiKeyView:
    key = require_key(key_id)
    if key.revoked_at is None:
        key = key.model_copy(update={"revoked_at": datetime.now(UTC)})
        await store(ctx, key)
    return view(key)


async def set_key_quota(ctx: BusContext, key_id: str, quota: Quota | None) -> ApiKeyView:
    key = require_key(key_id).model_copy(update={"quota": quota})
    await store(ctx, key)
    return view(key)


async def set_tenant_quota(ctx: BusContext, namespace: str, tenant: str, quota: Quota) -> TenantQuota:
    entry = TenantQuota(namespace=namespace, tenant=tenant, quota=quota)
    command = KeyCommand(op="put_tenant_quota", tenant_quota=entry)
    await send_and_wait(ctx, key_commands, f"tenant|{namespace}/{tenant}", command, keys_table)
    return entry


def tenant_quota(namespace: str, tenant: str) -> TenantQuota:
    return get_tenant_quota(namespace, tenant) or TenantQuota(
        namespace=namespace, tenant=tenant, quota=Quota()
    )


async def store(ctx: BusContext, key: ApiKey) -> None:
    await send_and_wait(ctx, key_commands, key.id, KeyCommand(op="put", key=key), keys_table)
