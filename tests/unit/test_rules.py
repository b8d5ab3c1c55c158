"""Publish rules without Kafka: pointers, ops, matching, first match wins, rule checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bus.errors import InvalidRule, RuleDenied, RulesTooLarge, Unprocessable
from bus.http.routes import field_errors
from bus.publish.models import Envelope
from bus.rules.engine import MISSING, evaluate, first_match, holds, json_equal, matches, resolve
from bus.rules.models import PayloadCondition, Rule, RuleSetSpec
from bus.rules.service import as_invalid_rule, check_rule_set

DOC: dict[str, Any] = {
    "order": {"id": "o-1", "total": 42, "items": [{"sku": "a"}, {"sku": "b"}], "paid": True},
    "a/b": 1,
    "m~n": 2,
    "": 3,
    "nothing": None,
}


def rule(id: str = "r", action: Any = None, **match: Any) -> Rule:
    return Rule.model_validate(
        {"id": id, "match": match, "action": action or {"type": "deny", "reason": "no"}}
    )


def cond(pointer: str, op: str, *value: Any) -> PayloadCondition:
    raw: dict[str, Any] = {"pointer": pointer, "op": op}
    if value:
        raw["value"] = value[0]
    return PayloadCondition.model_validate(raw)


def env(topic: str = "it/acme/orders", payload: Any = None, **headers: str) -> Envelope:
    return Envelope(topic=topic, payload=DOC if payload is None else payload, headers=headers)


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("", DOC),
        ("/order/id", "o-1"),
        ("/order/items/1/sku", "b"),
        ("/a~1b", 1),
        ("/m~0n", 2),
        ("/", 3),
        ("/nothing", None),
    ],
)
def test_pointers_select_values(pointer: str, expected: Any) -> None:
    assert resolve(DOC, pointer) == expected


@pytest.mark.parametrize(
    "pointer",
    ["/missing", "/order/items/2", "/order/items/-", "/order/items/01", "/order/items/x", "/order/id/0", "x"],
)
def test_pointers_to_nothing_are_missing(pointer: str) -> None:
    assert resolve(DOC, pointer) is MISSING


def test_pointer_into_a_scalar_payload() -> None:
    assert resolve("text", "") == "text" and resolve("text", "/a") is MISSING


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("/order/id", "eq", "o-1"), True),
        (cond("/order/total", "eq", 42.0), True),  # JSON numbers: 42 == 42.0
        (cond("/order/paid", "eq", 1), False),  # but true is not 1
        (cond("/order/total", "eq", "42"), False),
        (cond("/order/items", "eq", [{"sku": "a"}, {"sku": "b"}]), True),
        (cond("/nothing", "eq", None), True),
        (cond("/missing", "eq", None), False),
        (cond("/order/id", "ne", "o-2"), True),
        (cond("/order/id", "ne", "o-1"), False),
        (cond("/missing", "ne", "x"), True),  # a missing value is not equal
        (cond("/order/id", "exists"), True),
        (cond("/nothing", "exists"), True),  # null is a value
        (cond("/missing", "exists"), False),
        (cond("/missing", "not_exists"), True),
        (cond("/order/id", "not_exists"), False),
        (cond("/order/id", "in", ["o-1", "o-2"]), True),
        (cond("/order/id", "in", ["o-3"]), False),
        (cond("/missing", "in", [None]), False),
        (cond("/order/total", "gt", 40), True),
        (cond("/order/total", "gt", 42), False),
        (cond("/order/total", "lt", 42.5), True),
        (cond("/order/total", "lt", 42), False),
        (cond("/order/id", "gt", "o-0"), True),  # strings compare with strings
        (cond("/order/id", "gt", 1), False),  # never across kinds
        (cond("/order/paid", "gt", 0), False),  # a boolean is not a number
        (cond("/missing", "lt", 100), False),
    ],
)
def test_each_op(condition: PayloadCondition, expected: bool) -> None:
    assert holds(condition, DOC) is expected


def test_json_equality() -> None:
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal(True, 1) and not json_equal(0, False) and not json_equal(None, 0)


def test_topic_globs_match_the_topic_name() -> None:
    assert matches(rule(topics="orders"), "orders", {}, None)
    assert matches(rule(topics="ord*"), "orders", {}, None)
    assert matches(rule(topics="order?"), "orders", {}, None)
    assert not matches(rule(topics="order?"), "order", {}, None)
    assert not matches(rule(topics="pay*"), "orders", {}, None)
    assert matches(rule(), "anything", {}, None)  # an empty match matches every record


def test_headers_must_all_be_equal() -> None:
    r = rule(headers={"source": "crm", "env": "prod"})
    assert matches(r, "t", {"source": "crm", "env": "prod", "other": "x"}, None)
    assert not matches(r, "t", {"source": "crm"}, None)
    assert not matches(r, "t", {"source": "CRM", "env": "prod"}, None)


def test_every_payload_condition_must_hold() -> None:
    both = rule(
        payload=[{"pointer": "/order/total", "op": "gt", "value": 10}, {"pointer": "/x", "op": "exists"}]
    )
    assert not matches(both, "t", {}, DOC)
    assert matches(both, "t", {}, {**DOC, "x": 0})


def test_first_match_wins() -> None:
    rules = [
        rule(
            "big",
            {"type": "tag", "headers": {"size": "big"}},
            payload=[{"pointer": "/order/total", "op": "gt", "value": 10}],
        ),
        rule("all", {"type": "deny", "reason": "never"}),
    ]
    found = first_match(rules, env())
    assert found is not None and found.id == "big"
    small = first_match(rules, env(payload={"order": {"total": 1}}))
    assert small is not None and small.id == "all"
    assert first_match([], env()) is None


def test_actions_deny_tag_reroute() -> None:
    tag = rule("t", {"type": "tag", "headers": {"trace": "rule", "new": "1"}}, topics="orders")
    reroute = rule("r", {"type": "reroute", "topic": "quarantine"}, topics="payments")
    deny = rule("d", {"type": "deny", "reason": "frozen"}, topics="audit")
    rules_of = {("it", "acme"): [tag, reroute, deny]}

    def lookup(namespace: str, tenant: str) -> list[Rule]:
        return rules_of.get((namespace, tenant), [])

    sent = [env(trace="caller", keep="yes"), env("it/acme/payments"), env("it/other/payments")]
    tagged, rerouted, untouched = evaluate(sent, lookup, single=False)
    assert tagged.headers == {"trace": "rule", "new": "1", "keep": "yes"}  # the rule's headers win
    assert tagged.topic == "it/acme/orders"
    assert rerouted.topic == "it/acme/quarantine" and rerouted.payload == DOC
    assert untouched == sent[2]  # another tenant's rules do not apply
    assert sent[0].headers == {"trace": "caller", "keep": "yes"}  # the caller's envelope is not mutated

    with pytest.raises(RuleDenied) as denied:
        evaluate([env(), env("it/acme/audit")], lookup, single=False)
    assert denied.value.status == 403 and denied.value.code == "rule_denied"
    assert denied.value.details == {"index": 1, "rule": "d", "reason": "frozen"}
    with pytest.raises(RuleDenied) as single:
        evaluate([env("it/acme/audit")], lookup, single=True)
    assert single.value.details == {"rule": "d", "reason": "frozen"}


def test_a_rerouted_record_is_not_evaluated_again() -> None:
    rules = [
        rule("move", {"type": "reroute", "topic": "b"}, topics="a"),
        rule("deny-b", {"type": "deny", "reason": "no"}, topics="b"),
    ]
    [moved] = evaluate([env("it/acme/a")], lambda n, t: rules, single=True)
    assert moved.topic == "it/acme/b"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"pointer": "order", "op": "exists"}, "JSON pointer"),
        ({"pointer": "/a~2", "op": "exists"}, "JSON pointer"),
        ({"pointer": "/" + "a" * 256, "op": "exists"}, "at most 256"),
        ({"pointer": "/a", "op": "like", "value": 1}, "Input should be"),
        ({"pointer": "/a", "op": "exists", "value": 1}, "takes no value"),
        ({"pointer": "/a", "op": "eq"}, "needs a value"),
        ({"pointer": "/a", "op": "in", "value": 1}, "list"),
        ({"pointer": "/a", "op": "in", "value": []}, "list"),
        ({"pointer": "/a", "op": "gt", "value": True}, "number or a string"),
        ({"pointer": "/a", "op": "lt", "value": [1]}, "number or a string"),
    ],
)
def test_bad_conditions_are_refused(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        PayloadCondition.model_validate(raw)
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    "raw",
    [
        {"id": "r", "action": {"type": "tag", "headers": {"bus.tenant": "x"}}},
        {"id": "r", "action": {"type": "tag", "headers": {"BUS.x": "x"}}},
        {"id": "r", "action": {"type": "tag", "headers": {}}},
        {"id": "r", "match": {"topics": "orders"}, "action": {"type": "reroute", "topic": "orders"}},
        {"id": "r", "action": {"type": "reroute", "topic": "Bad_Name"}},
        {"id": "r", "action": {"type": "explode"}},
        {"id": "r", "action": {"type": "deny", "reason": ""}},
        {"id": "r", "match": {"topics": "a/b"}, "action": {"type": "deny", "reason": "x"}},
        {"id": "", "action": {"type": "deny", "reason": "x"}},
        {"id": "r", "action": {"type": "deny", "reason": "x"}, "extra": 1},
    ],
)
def test_bad_rules_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Rule.model_validate(raw)


def test_rule_sets_are_bounded_and_ids_unique() -> None:
    deny = {"type": "deny", "reason": "x"}
    with pytest.raises(ValidationError):
        RuleSetSpec.model_validate({"rules": [{"id": f"r{i}", "action": deny} for i in range(101)]})
    check_rule_set(
        RuleSetSpec.model_validate({"rules": [{"id": f"r{i}", "action": deny} for i in range(100)]})
    )
    twice = RuleSetSpec.model_validate(
        {"rules": [{"id": "a", "action": deny}, {"id": "b", "action": deny}, {"id": "a", "action": deny}]}
    )
    with pytest.raises(InvalidRule) as exc:
        check_rule_set(twice)
    assert exc.value.details["index"] == 2 and exc.value.details["rule"] == "a"
    huge = {"type": "deny", "reason": "x" * 500}
    many = [
        {
            "id": f"r{i}",
            "action": huge,
            "match": {"payload": [{"pointer": "/" + "p" * 255, "op": "exists"}] * 10},
        }
        for i in range(100)
    ]
    with pytest.raises(RulesTooLarge):
        check_rule_set(RuleSetSpec.model_validate({"rules": many}))


def test_body_errors_inside_a_rule_name_its_index() -> None:
    body = {
        "rules": [
            {"id": "ok", "action": {"type": "deny", "reason": "x"}},
            {"id": "bad", "action": {"type": "tag", "headers": {"bus.x": "1"}}},
        ]
    }
    with pytest.raises(ValidationError) as exc:
        RuleSetSpec.model_validate(body)
    mapped = as_invalid_rule(Unprocessable("shape", field_errors(exc.value)))
    assert isinstance(mapped, InvalidRule)
    assert mapped.details["index"] == 1 and "bus." in mapped.details["reason"]
    assert mapped.details["path"] == "action/tag/headers"
    outside = Unprocessable("shape", [{"path": "rules", "type": "too_long", "message": "too many"}])
    assert as_invalid_rule(outside) is outside
