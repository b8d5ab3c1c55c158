"""Authentication and authorization: one mechanism for every route.

Every route declares its Access in the route table (routes.py); the middleware
authenticates every request but /healthz and checks what the declaration allows. A
route whose target is in the body (create topic, publish) also calls require() on it,
and list routes filter with can_see(). Keys are 'abk_<id>.<secret>': the id finds the
key, and only a sha256 of the secret is stored. Secrets never reach a log or an error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase

from bus.errors import AdminRequired, InvalidKey, PermissionMissing, TenantForbidden, Unauthenticated
from bus.keys.models import Action, ApiKey, Grant
from bus.settings import Settings

KEY_PREFIX = "abk_"
BOOTSTRAP_ID = "bootstrap"


class Access(StrEnum):
    """What a route requires of the caller's key."""

    PUBLIC = "public"  # no key at all (/healthz)
    AUTHENTICATED = "authenticated"  # any valid key; the handler shows only what the key may see
    ADMIN = "admin"
    READ = "read"  # the action on the route's target (path, or body when the path has none)
    WRITE = "write"
    MANAGE = "manage"

    @property
    def action(self) -> Action | None:
        return Action(self.value) if self.value in Action.__members__.values() else None


@dataclass(frozen=True)
class Principal:
    key_id: str
    admin: bool
    namespace: str | None = None
    tenant: str | None = None
    grants: tuple[Grant, ...] = field(default_factory=tuple)


def new_secret(key_id: str) -> str:
    return f"{KEY_PREFIX}{key_id}.{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    # Secrets carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate(settings: Settings, authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthenticated("Send 'Authorization: Bearer <key>'", None)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Send 'Authorization: Bearer <key>'", None)
    admin = settings.admin_key
    if admin is not None and hmac.compare_digest(token.encode(), admin.get_secret_value().encode()):
        return Principal(BOOTSTRAP_ID, admin=True)
    key = lookup(token)
    if key is None:
        raise InvalidKey("Unknown, rotated or revoked key", None)
    return principal_of(key)


def lookup(token: str) -> ApiKey | None:
    if not token.startswith(KEY_PREFIX) or "." not in token:
        return None
    # Imported here: the key table needs the Faust app, whose web middleware needs this module.
    from tables.keys import get_key

    key_id = token[len(KEY_PREFIX) :].split(".", 1)[0]
    key = get_key(key_id)
    if key is None or key.revoked_at is not None:
        return None
    return key if hmac.compare_digest(key.secret_hash, hash_secret(token)) else None


def principal_of(key: ApiKey) -> Principal:
    return Principal(key.id, key.role == "admin", key.namespace, key.tenant, tuple(key.grants))


def require_admin(principal: Principal) -> None:
    if not principal.admin:
        raise AdminRequired("This needs an admin key", {"permission": "admin"})


def require(principal: Principal, action: Action, namespace: str, tenant: str, topic: str | None) -> None:
    """Raise unless the key may do action on the tenant's topic (any topic when None)."""
    if principal.admin:
        return
    if (principal.namespace, principal.tenant) != (namespace, tenant):
        raise TenantForbidden("This key belongs to another tenant", {"permission": action.value})
    if not has_grant(principal, action, topic):
        raise PermissionMissing(
            f"This key lacks the '{action.value}' permission here", {"permission": action.value}
        )


def has_grant(principal: Principal, action: Action, topic: str | None) -> bool:
    return any(
        action in g.actions and (topic is None or fnmatchcase(topic, g.topics)) for g in principal.grants
    )


def can_see(principal: Principal, namespace: str, tenant: str, topic: str | None = None) -> bool:
    """Whether a list may show this item to the key: own tenant, and some grant on it."""
    if principal.admin:
        return True
    if (principal.namespace, principal.tenant) != (namespace, tenant):
        return False
    return any(topic is None or fnmatchcase(topic, g.topics) for g in principal.grants)
