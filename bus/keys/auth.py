"""Authentication: which key a request carries (what it may do is bus.http.access).

The middleware calls authenticate() (wired by bus.assembly) on every request but the
public ones. Keys are 'abk_<id>.<secret>': the id finds the
key, and only a sha256 of the secret is stored. Secrets never reach a log or an error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from bus.errors import InvalidKey, Unauthenticated
from bus.http.access import Principal
from bus.keys.models import ApiKey
from bus.keys.store import get_key
from bus.settings import Settings

__all__ = ["BOOTSTRAP_ID", "authenticate", "hash_secret", "new_secret"]

KEY_PREFIX = "abk_"
BOOTSTRAP_ID = "bootstrap"


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

    key_id = token[len(KEY_PREFIX) :].split(".", 1)[0]
    key = get_key(key_id)
    if key is None or key.revoked_at is not None:
        return None
    return key if hmac.compare_digest(key.secret_hash, hash_secret(token)) else None


def principal_of(key: ApiKey) -> Principal:
    return Principal(key.id, key.role == "admin", key.namespace, key.tenant, tuple(key.grants))
