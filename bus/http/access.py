"""Who may call a route: the Access every route declares, the Principal a key stands for,
and the checks handlers make on targets named in a body (require) or in lists (can_see).

The middleware authenticates every request but the public ones (through the
authenticator bus.assembly installs) and checks what the route's declaration allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase

from agentbus_client.models.keys import TOPIC_GLOB, Action, Grant
from pydantic import TypeAdapter

from bus.errors import AdminRequired, PermissionMissing, TenantForbidden

__all__ = [
    "TOPIC_GLOB",
    "Access",
    "Action",
    "Grant",
    "Principal",
    "can_see",
    "has_grant",
    "require",
    "require_admin",
]


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

    def to_identity(self) -> str:
        """What a forwarded request says of its caller (signed by the forwarding worker)."""
        return _IDENTITY.dump_json(self).decode()

    @classmethod
    def from_identity(cls, identity: str) -> Principal:
        return _IDENTITY.validate_json(identity)


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


_IDENTITY: TypeAdapter[Principal] = TypeAdapter(Principal)
