"""Applies key commands (create, rotate, revoke and quota are all 'put' of the whole key) and
tenant quotas, in log order."""

from __future__ import annotations

import logging

import faust

from bus.kafka.faust_app import app
from bus.keys.models import KeyCommand
from bus.keys.store import tenant_quota_key
from bus.state.command_apply import apply_commands
from tables.keys import key_commands, keys

__all__: list[str] = []

log = logging.getLogger(__name__)


@app.agent(key_commands)  # type: ignore[untyped-decorator]
async def apply_key_commands(stream: faust.StreamT[bytes]) -> None:
    await apply_commands(stream, KeyCommand, keys, apply)


def apply(command: KeyCommand) -> None:
    if command.op == "put" and command.key is not None:
        keys.put(command.key.id, command.key)
        log.info("key %s stored (revoked: %s)", command.key.id, command.key.revoked_at is not None)
    elif command.op == "put_tenant_quota" and command.tenant_quota is not None:
        q = command.tenant_quota
        keys.put(tenant_quota_key(q.namespace, q.tenant), q)
        log.info("quota of tenant %s/%s stored", q.namespace, q.tenant)
