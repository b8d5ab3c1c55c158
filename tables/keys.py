"""API keys by key id: a global table, so every worker authenticates locally and a
revocation reaches every worker within milliseconds. Written only by workers.keys."""

from __future__ import annotations

from bus.faust_app import app
from bus.models.keys import ApiKey
from tables.commanded import CommandedTable

keys = CommandedTable(app, "keys", help="API keys by key id (secrets only as hashes).")


def get_key(key_id: str) -> ApiKey | None:
    return keys.get(key_id, ApiKey)


def all_keys() -> list[ApiKey]:
    found = (keys.get(k, ApiKey) for k in keys.keys())
    return [k for k in found if k is not None]
