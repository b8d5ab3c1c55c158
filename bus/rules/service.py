"""A tenant's publish rules: read, replace and clear the whole ordered set.

Changes go through the rule-commands log (see workers.rules); reads come from this
worker's copy of the rules table, which a change has reached before its request is
answered. What a rule does on publish is in bus.rules.engine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agentbus_client.models.publish import Envelope
from agentbus_client.models.topics import topic_id

from bus.errors import InvalidRule, RulesTooLarge, TopicNotFound, Unprocessable
from bus.kafka.context import BusContext
from bus.rules import engine
from bus.rules.engine import RuleLookup, evaluate
from bus.rules.models import (
    MAX_RULE_SET_BYTES,
    RequireApprovalAction,
    RerouteAction,
    Rule,
    RuleCommand,
    RuleSet,
    RuleSetSpec,
)
from bus.rules.store import get_rule_set, rule_set_key
from bus.state.command_log import catch_up, send_and_wait
from bus.topics.service import require_topic
from tables.rules import rule_commands
from tables.rules import rules as rules_table

__all__ = [
    "apply_rules",
    "approval_gates",
    "as_invalid_rule",
    "check_rule_set",
    "clear_rules",
    "get_rules",
    "put_rules",
    "stored_rules",
]

RULE_PATH = re.compile(r"^rules/(\d+)(?:/(.*))?$")


def invalid_rule(index: int, reason: str, **more: Any) -> InvalidRule:
    return InvalidRule(f"Rule {index} is invalid: {reason}", {"index": index, "reason": reason, **more})


def as_invalid_rule(exc: Unprocessable) -> Unprocessable:
    """A body error inside rules[i] becomes invalid_rule naming i; others stay as they are."""
    for error in exc.details if isinstance(exc.details, list) else []:
        found = RULE_PATH.match(str(error.get("path", "")))
        if found:
            reason = str(error.get("message", "")).removeprefix("Value error, ")
            return invalid_rule(int(found[1]), reason, path=found[2] or "")
    return exc


def check_rule_set(spec: RuleSetSpec) -> None:
    """What the models cannot check alone: a bounded size, ids unique in the set."""
    size = len(spec.model_dump_json())
    if size > MAX_RULE_SET_BYTES:
        raise RulesTooLarge(
            "The rule set is over the size limit", {"size": size, "limit": MAX_RULE_SET_BYTES}
        )
    first: dict[str, int] = {}
    for index, rule in enumerate(spec.rules):
        if rule.id in first:
            raise invalid_rule(
                index, f"id '{rule.id}' is already used by rule {first[rule.id]}", rule=rule.id
            )
        first[rule.id] = index


async def check_targets(ctx: BusContext, namespace: str, tenant: str, rules: list[Rule]) -> None:
    """invalid_rule unless every reroute target is a topic of the tenant."""
    for index, rule in enumerate(rules):
        if not isinstance(rule.action, RerouteAction):
            continue
        target = topic_id(namespace, tenant, rule.action.topic)
        try:
            await require_topic(ctx, target)
        except TopicNotFound:
            raise invalid_rule(
                index, f"it reroutes to {target}, which does not exist", rule=rule.id, topic=target
            ) from None


async def get_rules(ctx: BusContext, namespace: str, tenant: str) -> RuleSet:
    """The tenant's rules, after catching up with the log (an empty set when none)."""
    await catch_up(ctx, rule_commands, rules_table)
    return current(namespace, tenant)


def current(namespace: str, tenant: str) -> RuleSet:
    return get_rule_set(namespace, tenant) or RuleSet(namespace=namespace, tenant=tenant)


async def put_rules(ctx: BusContext, namespace: str, tenant: str, spec: RuleSetSpec) -> RuleSet:
    """Replace the tenant's whole rule set; a bad rule is refused and nothing is stored."""
    check_rule_set(spec)
    await check_targets(ctx, namespace, tenant, spec.rules)
    rule_set = RuleSet(namespace=namespace, tenant=tenant, rules=spec.rules, updated_at=datetime.now(UTC))
    await send(ctx, RuleCommand(op="put", namespace=namespace, tenant=tenant, rule_set=rule_set))
    return current(namespace, tenant)


async def clear_rules(ctx: BusContext, namespace: str, tenant: str) -> RuleSet:
    await send(ctx, RuleCommand(op="delete", namespace=namespace, tenant=tenant))
    return current(namespace, tenant)


async def send(ctx: BusContext, command: RuleCommand) -> None:
    key = rule_set_key(command.namespace, command.tenant)
    await send_and_wait(ctx, rule_commands, key, command, rules_table)


# -- applying the stored rules on publish --------------------------------------------------


def stored_rules() -> RuleLookup:
    """Rules from this worker's copy of the rules table, each tenant read once per request.

    No catch-up: a rule change is in force on the worker that answered it at once, and
    on the others within milliseconds, as it replicates.
    """
    seen: dict[tuple[str, str], Sequence[Rule]] = {}

    def rules_of(namespace: str, tenant: str) -> Sequence[Rule]:
        if (namespace, tenant) not in seen:
            found = get_rule_set(namespace, tenant)
            seen[(namespace, tenant)] = found.rules if found is not None else ()
        return seen[(namespace, tenant)]

    return rules_of


async def apply_rules(
    ctx: BusContext, envelopes: Sequence[Envelope], single: bool, rules_of: RuleLookup
) -> list[Envelope]:
    """The envelopes as the tenants' rules rewrite them; raises before anything is produced.

    A reroute to a topic deleted since the rule was stored is a 404 topic_not_found
    that names the target and the topic the record was sent to.
    """
    rewritten = evaluate(envelopes, rules_of, single)
    for i, (sent, routed) in enumerate(zip(envelopes, rewritten, strict=True)):
        if routed.topic != sent.topic:
            await require_target(ctx, routed.topic, sent.topic, None if single else i)
    return rewritten


async def require_target(ctx: BusContext, target: str, sent_to: str, index: int | None) -> None:
    try:
        await require_topic(ctx, target)
    except TopicNotFound:
        where = {} if index is None else {"index": index}
        raise TopicNotFound(
            f"A rule reroutes {sent_to} to {target}, which does not exist",
            {**where, "topic": target, "rerouted_from": sent_to},
        ) from None


def approval_gates(envelopes: Sequence[Envelope], rules_of: RuleLookup) -> list[RequireApprovalAction | None]:
    """For each envelope, the require_approval action of the first stored rule that matches it."""
    return engine.approval_gates(envelopes, rules_of)
