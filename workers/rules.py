"""Applies rule commands (replace or clear a tenant's whole rule set), in log order.

Both commands carry the whole outcome, so applying one twice changes nothing.
"""

from __future__ import annotations

import logging

import faust

from bus.kafka.faust_app import app
from bus.rules.models import RuleCommand
from bus.rules.store import rule_set_key
from bus.state.command_apply import apply_commands
from tables.rules import rule_commands, rules

__all__: list[str] = []

log = logging.getLogger(__name__)


@app.agent(rule_commands)  # type: ignore[untyped-decorator]
async def apply_rule_commands(stream: faust.StreamT[bytes]) -> None:
    await apply_commands(stream, RuleCommand, rules, apply)


def apply(command: RuleCommand) -> None:
    key = rule_set_key(command.namespace, command.tenant)
    if command.op == "put" and command.rule_set is not None:
        rules.put(key, command.rule_set)
        log.info("rules of %s replaced (%d rules)", key, len(command.rule_set.rules))
    elif command.op == "delete":
        rules.remove(key)
        log.info("rules of %s cleared", key)
