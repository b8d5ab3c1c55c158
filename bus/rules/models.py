"""Publish-edge rules: an ordered list per tenant, applied to every record before it is produced.

A rule is {id, match, action}. The match is an AND of a glob on the topic name, exact
caller headers and conditions on the payload (JSON pointers); the action denies the
record, tags it with headers, or reroutes it to another topic of the tenant. Only the
first matching rule of the list applies (see bus.rules.engine).
"""

from __future__ import annotations

from typing import Literal

from agentbus_client.models.rules import (
    MAX_RULE_SET_BYTES,
    DenyAction,
    PayloadCondition,
    RequireApprovalAction,
    RerouteAction,
    Rule,
    RuleSet,
    RuleSetSpec,
    TagAction,
)
from pydantic import BaseModel

__all__ = [
    "MAX_RULE_SET_BYTES",
    "DenyAction",
    "PayloadCondition",
    "RequireApprovalAction",
    "RerouteAction",
    "Rule",
    "RuleCommand",
    "RuleSet",
    "RuleSetSpec",
    "TagAction",
]


class RuleCommand(BaseModel):
    """A change to a tenant's rules, as a record on the rule-commands topic."""

    op: Literal["put", "delete"]
    namespace: str
    tenant: str
    rule_set: RuleSet | None = None  # put
