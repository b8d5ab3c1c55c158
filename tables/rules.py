"""Publish rules, one ordered set per tenant, in one global table.

Every worker holds every tenant's rules, so evaluating them on publish never leaves the
worker. Keys: 'namespace/tenant' -> RuleSet. Written only by workers.rules.
"""

from __future__ import annotations

from bus.kafka.faust_app import app
from bus.rules.models import RuleSet
from bus.state.command_table import CommandedTable

rules = CommandedTable(app, "rules", help="Publish rules by namespace/tenant.")


def rule_set_key(namespace: str, tenant: str) -> str:
    return f"{namespace}/{tenant}"


def get_rule_set(namespace: str, tenant: str) -> RuleSet | None:
    return rules.get(rule_set_key(namespace, tenant), RuleSet)
