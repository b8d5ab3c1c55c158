"""Schema compatibility: narrowings between two schemas, and the checks per compatibility mode."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest

from bus.schemas.compatibility import breaking_changes, narrowings
from bus.schemas.models import BreakingChange, CompatibilityMode, JsonSchema

NONE: frozenset[str] = frozenset()


def names(*changes: str) -> frozenset[str]:
    return frozenset(changes)


def obj(props: dict[str, Any] | None = None, **rest: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props or {}}
    schema.update(rest)
    return schema


STR: dict[str, Any] = {"type": "string"}
NUM: dict[str, Any] = {"type": "number"}
INT: dict[str, Any] = {"type": "integer"}


def order(total: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return obj({"order": obj({"total": total, "id": STR}, **rest)})


# (id, old, new, names for narrowings(old, new), names for narrowings(new, old))
PAIRS: list[tuple[str, JsonSchema, JsonSchema, frozenset[str], frozenset[str]]] = [
    # identity and annotations
    ("identical", obj({"a": STR}, required=["a"]), obj({"a": STR}, required=["a"]), NONE, NONE),
    (
        "annotations-only",
        {"type": "string", "title": "A", "description": "x", "$id": "urn:a"},
        {
            "type": "string",
            "title": "B",
            "examples": ["y"],
            "$comment": "c",
            "deprecated": True,
            "readOnly": True,
            "writeOnly": False,
            "default": "z",
            "$schema": "https://json-schema.org/draft/2020-12/schema",
        },
        NONE,
        NONE,
    ),
    (
        "annotations-inside-anyOf",
        {"anyOf": [{**STR, "description": "a"}, INT]},
        {"anyOf": [{**STR, "description": "b", "title": "t"}, INT]},
        NONE,
        NONE,
    ),
    ("unknown-keyword-ignored", {"type": "string", "x-ui": 1}, {"type": "string", "x-ui": 2}, NONE, NONE),
    # types
    ("type-string-to-integer", STR, INT, names("type_narrowed"), names("type_narrowed")),
    ("type-integer-to-number", INT, NUM, NONE, names("type_narrowed")),
    ("type-list-widened", {"type": ["string"]}, {"type": ["string", "null"]}, NONE, names("type_narrowed")),
    ("type-added", {}, STR, names("type_narrowed"), NONE),
    (
        "type-all-types-listed",
        {},
        {"type": ["null", "boolean", "object", "array", "number", "string"]},
        NONE,
        NONE,
    ),
    ("enum-only-to-typed-enum", {"enum": ["a", "b"]}, {"type": "string", "enum": ["a", "b"]}, NONE, NONE),
    # boolean schemas
    ("true-to-false", True, False, names("type_narrowed"), NONE),
    ("object-schema-to-false", STR, False, names("type_narrowed"), NONE),
    ("false-to-false", False, False, NONE, NONE),
    ("true-and-empty", True, {}, NONE, NONE),
    ("true-to-typed", True, NUM, names("type_narrowed"), NONE),
    # enums and const
    (
        "enum-value-removed",
        {"enum": ["a", "b", "c"]},
        {"enum": ["a", "b"]},
        names("enum_value_removed"),
        NONE,
    ),
    ("enum-added", STR, {**STR, "enum": ["a"]}, names("enum_added"), NONE),
    ("enum-int-float-equal", {"enum": [1, 2]}, {"enum": [1.0, 2.0]}, NONE, NONE),
    (
        "enum-true-is-not-1",
        {"enum": [True]},
        {"enum": [1]},
        names("enum_value_removed"),
        names("enum_value_removed"),
    ),
    ("const-added", STR, {**STR, "const": "a"}, names("const_changed"), NONE),
    ("const-changed", {"const": "a"}, {"const": "b"}, names("const_changed"), names("const_changed")),
    ("const-to-enum", {"const": "a"}, {"enum": ["a", "b"]}, NONE, names("enum_value_removed")),
    ("one-value-enum-equals-const", {"enum": ["a"]}, {"const": "a"}, NONE, NONE),
    # required
    (
        "required-added",
        obj({"a": STR, "b": STR}, required=["a"]),
        obj({"a": STR, "b": STR}, required=["a", "b"]),
        names("required_added"),
        NONE,
    ),
    (
        "required-added-with-default",
        obj({"a": STR, "b": STR}, required=["a"]),
        obj({"a": STR, "b": {**STR, "default": "x"}}, required=["a", "b"]),
        NONE,
        NONE,
    ),
    ("required-undeclared-property", obj(), obj(required=["c"]), names("required_added"), NONE),
    # open and closed objects
    ("optional-property-added-open", obj({"a": STR}), obj({"a": STR, "b": INT}), NONE, NONE),
    (
        "property-removed-closed",
        obj({"a": STR, "b": STR}, additionalProperties=False),
        obj({"a": STR}, additionalProperties=False),
        names("property_removed_closed"),
        NONE,
    ),
    (
        "closed-and-removed",
        obj({"a": STR, "b": STR}),
        obj({"a": STR}, additionalProperties=False),
        names("property_removed_closed", "additional_properties_closed"),
        NONE,
    ),
    (
        "additional-properties-closed",
        obj({"a": STR}),
        obj({"a": STR}, additionalProperties=False),
        names("additional_properties_closed"),
        NONE,
    ),
    (
        "unevaluated-properties-closed",
        obj({"a": STR}),
        obj({"a": STR}, unevaluatedProperties=False),
        names("additional_properties_closed"),
        NONE,
    ),
    (
        "additional-properties-schema-to-false",
        obj(additionalProperties=STR),
        obj(additionalProperties=False),
        names("additional_properties_closed"),
        NONE,
    ),
    (
        "additional-properties-schemas",
        obj(additionalProperties=NUM),
        obj(additionalProperties=INT),
        names("type_narrowed"),
        NONE,
    ),
    (
        "additional-properties-absent-to-schema",
        obj(),
        obj(additionalProperties=STR),
        names("type_narrowed"),
        NONE,
    ),
    (
        "removed-property-falls-to-additional-schema",
        obj({"a": STR}),
        obj(additionalProperties=INT),
        names("type_narrowed"),
        names("type_narrowed"),
    ),
    (
        "pattern-properties-narrowed",
        obj(patternProperties={"^x-": STR}),
        obj(patternProperties={"^x-": {**STR, "maxLength": 3}}),
        names("max_length_lowered"),
        NONE,
    ),
    (
        "removed-property-falls-to-pattern",
        obj({"x-a": STR}, additionalProperties=False),
        obj(patternProperties={"^x-": INT}, additionalProperties=False),
        names("type_narrowed"),
        names("type_narrowed", "property_removed_closed"),
    ),
    (
        "pattern-added-under-additional-schema",
        obj(additionalProperties=NUM),
        obj(additionalProperties=NUM, patternProperties={"^x-": INT}),
        names("type_narrowed"),
        NONE,
    ),
    ("pattern-added-to-open-object", obj(), obj(patternProperties={"^x-": INT}), NONE, NONE),
    # numbers
    ("minimum-raised", {**NUM, "minimum": 0}, {**NUM, "minimum": 1}, names("minimum_raised"), NONE),
    ("minimum-added", INT, {**INT, "minimum": 0}, names("minimum_raised"), NONE),
    (
        "minimum-made-exclusive",
        {**NUM, "minimum": 0},
        {**NUM, "exclusiveMinimum": 0},
        names("minimum_raised"),
        NONE,
    ),
    ("maximum-lowered", {**NUM, "maximum": 10}, {**NUM, "maximum": 5}, names("maximum_lowered"), NONE),
    (
        "maximum-made-exclusive",
        {**NUM, "maximum": 10},
        {**NUM, "exclusiveMaximum": 10},
        names("maximum_lowered"),
        NONE,
    ),
    (
        "draft4-boolean-exclusive",
        {**NUM, "minimum": 0},
        {**NUM, "minimum": 0, "exclusiveMinimum": True},
        names("minimum_raised"),
        NONE,
    ),
    (
        "multiple-of-divisor",
        {**NUM, "multipleOf": 4},
        {**NUM, "multipleOf": 2},
        NONE,
        names("multiple_of_changed"),
    ),
    (
        "multiple-of-decimal",
        {**NUM, "multipleOf": 0.3},
        {**NUM, "multipleOf": 0.1},
        NONE,
        names("multiple_of_changed"),
    ),
    ("multiple-of-added", NUM, {**NUM, "multipleOf": 0.5}, names("multiple_of_changed"), NONE),
    ("numeric-keyword-on-string-ignored", STR, {**STR, "minimum": 5}, NONE, NONE),
    ("string-keywords-on-integer-ignored", INT, {**INT, "maxLength": 3, "pattern": "x"}, NONE, NONE),
    (
        "array-and-object-keywords-on-string-ignored",
        STR,
        {**STR, "minItems": 1, "required": ["a"]},
        NONE,
        NONE,
    ),
    # strings
    (
        "string-lengths",
        {**STR, "minLength": 1, "maxLength": 10},
        {**STR, "minLength": 2, "maxLength": 5},
        names("min_length_raised", "max_length_lowered"),
        NONE,
    ),
    ("min-length-zero-added", STR, {**STR, "minLength": 0}, NONE, NONE),
    ("pattern-added", STR, {**STR, "pattern": "^a"}, names("pattern_changed"), NONE),
    (
        "pattern-changed",
        {**STR, "pattern": "^a"},
        {**STR, "pattern": "^b"},
        names("pattern_changed"),
        names("pattern_changed"),
    ),
    ("format-added", STR, {**STR, "format": "date-time"}, names("format_added"), NONE),
    # arrays
    (
        "items-narrowed",
        {"type": "array", "items": NUM},
        {"type": "array", "items": INT},
        names("type_narrowed"),
        NONE,
    ),
    (
        "array-bounds-and-unique",
        {"type": "array"},
        {"type": "array", "minItems": 1, "maxItems": 3, "uniqueItems": True},
        names("min_items_raised", "max_items_lowered", "unique_items_added"),
        NONE,
    ),
    (
        "prefix-items-narrowed",
        {"type": "array", "prefixItems": [STR, NUM]},
        {"type": "array", "prefixItems": [STR, INT]},
        names("type_narrowed"),
        NONE,
    ),
    (
        "items-closed",
        {"type": "array", "prefixItems": [STR]},
        {"type": "array", "prefixItems": [STR], "items": False},
        names("type_narrowed"),
        NONE,
    ),
    # object size
    (
        "object-size",
        {"type": "object", "maxProperties": 5},
        {"type": "object", "minProperties": 1, "maxProperties": 3},
        names("min_properties_raised", "max_properties_lowered"),
        NONE,
    ),
    # keywords compared as opaque JSON
    (
        "ref-changed",
        {"$ref": "#/$defs/a"},
        {"$ref": "#/$defs/b"},
        names("subschema_changed"),
        names("subschema_changed"),
    ),
    ("ref-removed", {"$ref": "#/$defs/a"}, {}, NONE, names("subschema_changed")),
    (
        "anyOf-branch-added",
        {"anyOf": [STR]},
        {"anyOf": [STR, INT]},
        names("subschema_changed"),
        names("subschema_changed"),
    ),
    (
        "dependentRequired-keys-are-names-not-annotations",
        {"dependentRequired": {"title": ["a"]}},
        {"dependentRequired": {"title": ["a", "b"]}},
        names("subschema_changed"),
        names("subschema_changed"),
    ),
    ("defs-recursed", {"$defs": {"money": NUM}}, {"$defs": {"money": INT}}, names("type_narrowed"), NONE),
    # nesting
    ("nested-type", order(NUM), order(STR), names("type_narrowed"), names("type_narrowed")),
    (
        "nested-required-and-bound",
        order(NUM),
        order({**NUM, "minimum": 0}, required=["total"]),
        names("minimum_raised", "required_added"),
        NONE,
    ),
]


def _names(changes: list[BreakingChange]) -> frozenset[str]:
    return frozenset(c.change for c in changes)


@pytest.mark.parametrize(
    ("old", "new", "forward", "backward"), [pytest.param(*p[1:], id=p[0]) for p in PAIRS]
)
def test_narrowings_both_ways(
    old: JsonSchema, new: JsonSchema, forward: frozenset[str], backward: frozenset[str]
) -> None:
    assert _names(narrowings(old, new)) == forward
    assert _names(narrowings(new, old)) == backward


def test_table_is_big_enough_and_ids_unique() -> None:
    assert len(PAIRS) >= 40
    assert len({p[0] for p in PAIRS}) == len(PAIRS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            order(NUM),
            order(STR),
            {("/properties/order/properties/total/type", "type_narrowed")},
            id="nested-type",
        ),
        pytest.param(
            order(NUM),
            order({**NUM, "exclusiveMinimum": 0}, required=["total"]),
            {
                ("/properties/order/properties/total/exclusiveMinimum", "minimum_raised"),
                ("/properties/order/required", "required_added"),
            },
            id="nested-bound-and-required",
        ),
        pytest.param(
            obj({"a/b~c": STR}),
            obj({"a/b~c": INT}),
            {("/properties/a~1b~0c/type", "type_narrowed")},
            id="escaping",
        ),
        pytest.param(True, False, {("", "type_narrowed")}, id="root-false"),
        pytest.param(
            {**NUM, "minimum": 0},
            {**NUM, "minimum": 0, "exclusiveMinimum": True},
            {("/minimum", "minimum_raised")},
            id="draft4-boolean-exclusive",
        ),
        pytest.param(
            obj({"a": STR, "b": STR}),
            obj({"a": STR}, additionalProperties=False),
            {
                ("/properties/b", "property_removed_closed"),
                ("/additionalProperties", "additional_properties_closed"),
            },
            id="closed",
        ),
        pytest.param(
            {"type": "array", "items": obj({"n": NUM})},
            {"type": "array", "items": obj({"n": INT})},
            {("/items/properties/n/type", "type_narrowed")},
            id="array-of-objects",
        ),
        pytest.param(
            {"type": "array", "prefixItems": [STR, NUM]},
            {"type": "array", "prefixItems": [STR, INT]},
            {("/prefixItems/1/type", "type_narrowed")},
            id="prefix-items",
        ),
        pytest.param(
            {"$defs": {"m": obj({"v": {"enum": [1, 2]}})}},
            {"$defs": {"m": obj({"v": {"enum": [1]}})}},
            {("/$defs/m/properties/v/enum", "enum_value_removed")},
            id="defs",
        ),
        pytest.param(
            obj(patternProperties={"^x-": STR}),
            obj(patternProperties={"^x-": {**STR, "pattern": "^[a-z]+$"}}),
            {("/patternProperties/^x-/pattern", "pattern_changed")},
            id="pattern-properties",
        ),
        pytest.param(
            obj({"a": {"$ref": "#/$defs/a"}}),
            obj({"a": {"$ref": "#/$defs/b"}}),
            {("/properties/a/$ref", "subschema_changed")},
            id="ref",
        ),
        pytest.param(
            obj({"a": STR}),
            obj(additionalProperties=INT),
            [("/additionalProperties/type", "type_narrowed")] * 2,  # for `a`, and for other extra properties
            id="removed-to-additional",
        ),
    ],
)
def test_pointers(old: JsonSchema, new: JsonSchema, expected: Collection[tuple[str, str]]) -> None:
    changes = narrowings(old, new)
    assert sorted((c.pointer, c.change) for c in changes) == sorted(expected)
    assert all(c.direction == "backward" and c.version is None and c.message for c in changes)


def test_one_change_per_added_required_property_names_it() -> None:
    changes = narrowings(obj({"a": STR, "b": STR}), obj({"a": STR, "b": STR}, required=["a", "b"]))
    assert [c.change for c in changes] == ["required_added", "required_added"]
    assert "'a'" in changes[0].message and "'b'" in changes[1].message


def test_messages_name_the_two_schemas() -> None:
    (change,) = narrowings(NUM, INT)
    assert change.message == "The new schema rejects type number, which the old schema allows"


# --- breaking_changes per mode --------------------------------------------------------------------------

V1: JsonSchema = obj({"a": STR, "b": INT}, required=["a", "b"])  # b required
V2: JsonSchema = obj({"a": STR, "b": INT}, required=["a"])  # b optional
CANDIDATE: JsonSchema = obj({"a": STR}, required=["a"])  # b no longer declared, object open
NARROW: JsonSchema = obj({"a": STR, "b": INT}, required=["a", "b"], additionalProperties=False)
HISTORY: list[tuple[int, JsonSchema]] = [(1, V1), (2, V2)]


def _summary(
    result: tuple[list[int], list[BreakingChange]],
) -> tuple[list[int], set[tuple[str, str, int | None]]]:
    versions, changes = result
    return versions, {(c.change, c.direction, c.version) for c in changes}


def test_none_accepts_anything() -> None:
    assert breaking_changes(CompatibilityMode.NONE, False, HISTORY) == ([], [])
    assert breaking_changes(CompatibilityMode.NONE, {"type": "null"}, HISTORY) == ([], [])


@pytest.mark.parametrize("mode", list(CompatibilityMode))
def test_empty_history_compares_nothing(mode: CompatibilityMode) -> None:
    assert breaking_changes(mode, False, []) == ([], [])


def test_backward_checks_only_latest_and_transitive_checks_all() -> None:
    # Adds a required property without default: breaks v2 (where it is optional)...
    candidate = obj({"a": STR, "b": INT, "c": STR}, required=["a", "b"])
    # ...whereas against a history whose latest already requires b, only v1 breaks.
    history: list[tuple[int, JsonSchema]] = [(1, obj({"a": STR}, required=["a"])), (2, V1)]
    assert breaking_changes(CompatibilityMode.BACKWARD, candidate, history) == ([2], [])
    versions, changes = breaking_changes(CompatibilityMode.BACKWARD_TRANSITIVE, candidate, history)
    assert versions == [1, 2]
    assert [(c.pointer, c.change, c.direction, c.version) for c in changes] == [
        ("/required", "required_added", "backward", 1)
    ]
    assert changes[0].message.startswith("The candidate requires property 'b'")


def test_backward_direction_is_old_data_new_reader() -> None:
    # NARROW closes the object and requires b: old (V2) data may lack b or carry extras.
    assert _summary(breaking_changes(CompatibilityMode.BACKWARD, NARROW, HISTORY)) == (
        [2],
        {("required_added", "backward", 2), ("additional_properties_closed", "backward", 2)},
    )
    # Widening is backward compatible.
    assert breaking_changes(CompatibilityMode.BACKWARD, CANDIDATE, [(2, NARROW)]) == ([2], [])


def test_forward_direction_is_new_data_old_reader() -> None:
    # Data written with the wider CANDIDATE may fail readers on NARROW (version 7).
    versions, changes = breaking_changes(CompatibilityMode.FORWARD, CANDIDATE, [(7, NARROW)])
    assert versions == [7]
    assert {(c.change, c.direction, c.version) for c in changes} == {
        ("required_added", "forward", 7),
        ("additional_properties_closed", "forward", 7),
    }
    assert all(c.message.startswith("Version 7 ") for c in changes)
    # A narrower candidate is forward compatible.
    assert breaking_changes(CompatibilityMode.FORWARD, NARROW, [(7, CANDIDATE)]) == ([7], [])


def test_forward_transitive_checks_every_version() -> None:
    history: list[tuple[int, JsonSchema]] = [(1, {"type": "integer"}), (3, {"type": "number"})]
    candidate: JsonSchema = {"type": ["number", "string"]}
    assert _summary(breaking_changes(CompatibilityMode.FORWARD, candidate, history)) == (
        [3],
        {("type_narrowed", "forward", 3)},
    )
    assert _summary(breaking_changes(CompatibilityMode.FORWARD_TRANSITIVE, {"type": "number"}, history)) == (
        [1, 3],
        {("type_narrowed", "forward", 1)},
    )


def test_full_checks_both_directions() -> None:
    history: list[tuple[int, JsonSchema]] = [(1, {"type": "string"}), (2, {"type": "number"})]
    assert _summary(breaking_changes(CompatibilityMode.FULL, {"type": "integer"}, history)) == (
        [2],
        {("type_narrowed", "backward", 2)},
    )
    assert _summary(breaking_changes(CompatibilityMode.FULL, {"type": ["number", "null"]}, history)) == (
        [2],
        {("type_narrowed", "forward", 2)},
    )
    assert breaking_changes(CompatibilityMode.FULL, {"type": "number", "title": "n"}, history) == ([2], [])


def test_full_transitive_reports_each_version_and_direction() -> None:
    history: list[tuple[int, JsonSchema]] = [(1, {"type": "string"}), (2, {"type": "number"})]
    versions, changes = breaking_changes(CompatibilityMode.FULL_TRANSITIVE, {"type": "number"}, history)
    assert versions == [1, 2]
    assert {(c.pointer, c.change, c.direction, c.version) for c in changes} == {
        ("/type", "type_narrowed", "backward", 1),
        ("/type", "type_narrowed", "forward", 1),
    }
    backward = next(c for c in changes if c.direction == "backward")
    forward = next(c for c in changes if c.direction == "forward")
    assert backward.message == "The candidate rejects type string, which version 1 allows"
    assert forward.message == "Version 1 rejects type number, which the candidate allows"


@pytest.mark.parametrize(
    ("mode", "compared", "directions"),
    [
        (CompatibilityMode.BACKWARD, [2], {"backward"}),
        (CompatibilityMode.BACKWARD_TRANSITIVE, [1, 2], {"backward"}),
        (CompatibilityMode.FORWARD, [2], {"forward"}),
        (CompatibilityMode.FORWARD_TRANSITIVE, [1, 2], {"forward"}),
        (CompatibilityMode.FULL, [2], {"backward", "forward"}),
        (CompatibilityMode.FULL_TRANSITIVE, [1, 2], {"backward", "forward"}),
    ],
)
def test_every_mode_compares_the_right_versions(
    mode: CompatibilityMode, compared: list[int], directions: set[str]
) -> None:
    # A candidate of a different type breaks every earlier version in both directions.
    history: list[tuple[int, JsonSchema]] = [(1, {"type": "string"}), (2, {"type": "string"})]
    versions, changes = breaking_changes(mode, {"type": "boolean"}, history)
    assert versions == compared
    assert {(c.direction, c.version) for c in changes} == {(d, v) for d in directions for v in compared}
