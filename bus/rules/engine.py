"""Publish-edge rules: which rule applies to a record, and what it does to it.

For each envelope the bus takes the rule set of the envelope's namespace and tenant and
applies the FIRST rule whose match holds; the rules after it are not looked at, and a
tagged or rerouted record is not evaluated again (so rules cannot loop). Rules see the
envelope as the caller sent it: its topic, its caller headers (never the bus.* ones) and
its payload. They run before the topic is looked up and before schema validation, so a
rerouted record is checked against its target topic's schema binding.

  deny     the whole request is refused with 403 rule_denied; nothing is produced
  tag      the rule's headers are added; they overwrite caller headers of the same name
  reroute  the record goes to another topic of the tenant; its receipt names that topic
  require_approval  the record is parked until a human approves it (bus.approvals.service); its
           receipt says awaiting_approval and names the approval

Everything here is pure except apply_rules(), the one call publish() makes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, TypeGuard

from agentbus_client.models.publish import Envelope
from agentbus_client.models.topics import topic_id
from pydantic import JsonValue

from bus.errors import RuleDenied
from bus.rules.models import DenyAction, PayloadCondition, RequireApprovalAction, Rule, TagAction

__all__ = [
    "MISSING",
    "RuleLookup",
    "approval_gates",
    "evaluate",
    "first_match",
    "holds",
    "json_equal",
    "matches",
    "resolve",
]

ARRAY_INDEX = re.compile(r"^(?:0|[1-9][0-9]*)$")
RuleLookup = Callable[[str, str], Sequence[Rule]]  # (namespace, tenant) -> its rules, in order


class Missing:
    """What a JSON pointer selects when the payload has nothing there."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


def resolve(document: Any, pointer: str) -> Any:
    """The value pointer (RFC 6901) selects in document, or MISSING."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        return MISSING
    node = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")  # this order, per RFC 6901
        if isinstance(node, dict):
            if token not in node:
                return MISSING
            node = node[token]
        elif isinstance(node, list):
            if not ARRAY_INDEX.match(token) or int(token) >= len(node):
                return MISSING  # '-' (past the end) and '01' select nothing
            node = node[int(token)]
        else:
            return MISSING
    return node


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: 1 == 1.0, but true != 1 and "1" != 1."""
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def compare(found: Any, value: JsonValue) -> int | None:
    """-1, 0 or 1 for two numbers or two strings; None when they are not comparable."""
    if is_number(found) and is_number(value):
        return (found > value) - (found < value)
    if isinstance(found, str) and isinstance(value, str):
        return (found > value) - (found < value)
    return None


def holds(condition: PayloadCondition, payload: Any) -> bool:
    found = resolve(payload, condition.pointer)
    value = condition.value
    match condition.op:
        case "exists":
            return found is not MISSING
        case "not_exists":
            return found is MISSING
        case "eq":
            return found is not MISSING and json_equal(found, value)
        case "ne":
            return found is MISSING or not json_equal(found, value)
        case "in":
            return (
                found is not MISSING and isinstance(value, list) and any(json_equal(found, v) for v in value)
            )
        case "gt":
            return compare(found, value) == 1
        case "lt":
            return compare(found, value) == -1
    return False  # unreachable: the model admits only the ops above


def matches(rule: Rule, name: str, headers: Mapping[str, str], payload: Any) -> bool:
    """Whether every part of the rule's match holds for a record on topic name."""
    m = rule.match
    return (
        fnmatchcase(name, m.topics)
        and all(headers.get(k) == v for k, v in m.headers.items())
        and all(holds(c, payload) for c in m.payload)
    )


def first_match(rules: Sequence[Rule], envelope: Envelope) -> Rule | None:
    name = envelope.topic.rsplit("/", 1)[-1]
    return next((r for r in rules if matches(r, name, envelope.headers, envelope.payload)), None)


def apply_rule(rule: Rule, envelope: Envelope, index: int | None = None) -> Envelope:
    """The envelope the rule turns this one into; RuleDenied (403) for a deny."""
    action = rule.action
    if isinstance(action, DenyAction):
        where = {} if index is None else {"index": index}
        raise RuleDenied(
            f"Rule '{rule.id}' refuses this record: {action.reason}",
            {**where, "rule": rule.id, "reason": action.reason},
        )
    if isinstance(action, TagAction):
        return envelope.model_copy(update={"headers": {**envelope.headers, **action.headers}})
    if isinstance(action, RequireApprovalAction):
        return envelope  # unchanged: publish parks it (see approval_gates)
    namespace, tenant, _ = envelope.topic.split("/")
    return envelope.model_copy(update={"topic": topic_id(namespace, tenant, action.topic)})


def evaluate(envelopes: Sequence[Envelope], rules_of: RuleLookup, single: bool) -> list[Envelope]:
    """Each envelope after the first rule of its tenant that matches it (unchanged if none)."""
    out: list[Envelope] = []
    for i, envelope in enumerate(envelopes):
        namespace, tenant, _ = envelope.topic.split("/")
        rule = first_match(rules_of(namespace, tenant), envelope)
        out.append(envelope if rule is None else apply_rule(rule, envelope, None if single else i))
    return out


def approval_gates(envelopes: Sequence[Envelope], rules_of: RuleLookup) -> list[RequireApprovalAction | None]:
    """For each envelope, the require_approval action of the first rule that matches it."""
    gates: list[RequireApprovalAction | None] = []
    for envelope in envelopes:
        namespace, tenant, _ = envelope.topic.split("/")
        rule = first_match(rules_of(namespace, tenant), envelope)
        gates.append(
            rule.action if rule is not None and isinstance(rule.action, RequireApprovalAction) else None
        )
    return gates
