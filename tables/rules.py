"""Publish rules, one ordered set per tenant, in one global table.

Every worker holds every tenant's rules, so evaluating them on publish never leaves the
worker. Keys: 'namespace/tenant' -> RuleSet. Written only by workers.rules.
"""

from __future__ import annotations

from bus.kafka.faust_app import app
from bus.state.command_table import CommandedTable, command_topic

__all__ = ["rule_commands", "rules"]

rules = CommandedTable(app, "rules", help="Publish rules by namespace/tenant.")
rule_commands = command_topic(app, "rule")
