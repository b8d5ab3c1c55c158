"""Typed reads of the rules table (tables/rules.py): what the service and the processor share."""

from __future__ import annotations

from bus.rules.models import RuleSet
from tables.rules import rules

__all__ = ["get_rule_set", "rule_set_key"]


def rule_set_key(namespace: str, tenant: str) -> str:
    return f"{namespace}/{tenant}"


def get_rule_set(namespace: str, tenant: str) -> RuleSet | None:
    return rules.get(rule_set_key(namespace, tenant), RuleSet)
