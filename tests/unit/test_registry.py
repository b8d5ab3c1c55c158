"""Registry rules and payload validation, without Kafka."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bus.errors import InvalidSchema, SchemaTooLarge
from bus.schemas.models import CompatibilityMode, SchemaVersion, SubjectMeta
from bus.schemas.registry import check_schema, decide, schema_id
from bus.schemas.validation import validator_for, violations


def version(n: int, schema: dict[str, Any]) -> SchemaVersion:
    return SchemaVersion(
        namespace="a", tenant="b", subject="s", version=n, schema_id=schema_id(schema),
        schema_=schema, created_at=datetime.now(UTC),
    )  # fmt: skip


def test_schema_id_ignores_key_order_and_whitespace() -> None:
    assert schema_id({"type": "object", "required": ["a"]}) == schema_id(
        {"required": ["a"], "type": "object"}
    )
    assert schema_id({"type": "object"}) != schema_id({"type": "array"})


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "nope"},
        {"required": "a"},
        {"properties": {"x": {"$ref": "http://elsewhere/x.json"}}},
        {"$defs": {"a": {"$ref": "other.json#/a"}}},
    ],
)
def test_bad_schemas_are_refused(schema: dict[str, object]) -> None:
    with pytest.raises(InvalidSchema):
        check_schema(schema)


def test_local_refs_and_big_schemas() -> None:
    check_schema({"$defs": {"n": {"type": "number"}}, "properties": {"x": {"$ref": "#/$defs/n"}}})
    with pytest.raises(SchemaTooLarge):
        check_schema({"description": "x" * 300_000})


def test_decide_reuses_identical_and_checks_the_mode() -> None:
    v1 = version(1, {"type": "object", "properties": {"s": {"enum": ["a", "b"]}}})
    meta = SubjectMeta(namespace="a", tenant="b", subject="s", versions=[1], next_version=2)
    assert decide(meta, [v1], v1.schema_id, v1.schema_).existing == v1
    narrowed = {"type": "object", "properties": {"s": {"enum": ["a"]}}}
    outcome = decide(meta, [v1], schema_id(narrowed), narrowed)
    assert outcome.existing is None and not outcome.report.compatible
    assert outcome.report.breaking_changes[0].pointer == "/properties/s/enum"
    lenient = meta.model_copy(update={"compatibility": CompatibilityMode.NONE})
    assert decide(lenient, [v1], schema_id(narrowed), narrowed).report.compatible


def test_violations_point_into_the_payload_sorted_and_bounded() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "integer"}},
            "email": {"format": "email"},
        },
        "required": ["id"],
    }
    v = validator_for(version(1, schema))
    found = violations(v, {"items": [1, "x", 3], "email": "not-an-email"})
    assert [(x.pointer, x.keyword) for x in found] == [
        ("", "required"),
        ("/email", "format"),
        ("/items/1", "type"),
    ]
    assert violations(v, {"id": 1, "items": [1]}) == []
    many = violations(
        validator_for(version(2, {"type": "array", "items": {"type": "string"}})), list(range(500))
    )
    assert len(many) == 100
    assert validator_for(version(3, schema)) is v  # same schema id, same compiled validator


def test_formats_are_asserted_including_date_time_and_uri() -> None:
    schema = {"properties": {"at": {"format": "date-time"}, "link": {"format": "uri"}}}
    v = validator_for(version(9, schema))
    assert violations(v, {"at": "2026-11-27T05:00:00Z", "link": "https://example.com/x"}) == []
    found = violations(v, {"at": "yesterday", "link": "not a uri"})
    assert [(x.pointer, x.keyword) for x in found] == [("/at", "format"), ("/link", "format")]
