"""A registered schema can always be applied: every local $ref resolves, and no $ref chain
loops without descending into the payload (else every publish would fail)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bus.errors import InvalidSchema
from bus.schemas.registry import check_schema
from bus.schemas.validation import violations

BROKEN: list[dict[str, Any]] = [
    {"$ref": "#/$defs/missing"},
    {"$ref": "#"},
    {"allOf": [{"$ref": "#"}]},
    {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"},
    {"properties": {"x": {"$ref": "#nowhere"}}},
    {"if": {"const": 5}, "then": {"$ref": "#"}},
]
FINE: list[dict[str, Any]] = [
    {"type": "object", "properties": {"child": {"$ref": "#"}}},  # recursion bounded by the payload
    {"$defs": {"node": {"$anchor": "node", "items": {"$ref": "#node"}}}, "$ref": "#node"},
    {"properties": {"enum": {"type": "string"}}, "$ref": "#/properties/enum"},
    {"$defs": {"a b": {"type": "number"}}, "$ref": "#/$defs/a%20b"},
    {"const": {"$ref": "#/nowhere"}},  # data, not a schema
]


@pytest.mark.parametrize("schema", BROKEN)
def test_schemas_that_could_never_be_applied_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidSchema):
        check_schema(schema)


@pytest.mark.parametrize("schema", FINE)
def test_recursive_and_anchored_schemas_are_fine(schema: dict[str, Any]) -> None:
    check_schema(schema)
    assert isinstance(violations(Draft202012Validator(schema), {"child": {"child": {}}}), list)


def test_a_schema_stored_before_the_check_is_a_violation_not_a_crash() -> None:
    for schema in ({"$ref": "#"}, {"$ref": "#/$defs/missing"}):
        found = violations(Draft202012Validator(schema), {"a": 1})
        assert [v.keyword for v in found] == ["$ref"]
