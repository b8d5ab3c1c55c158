"""Where jsonschema-rs reads a schema differently from python-jsonschema, the bus keeps
python-jsonschema's reading; what jsonschema-rs cannot be trusted with stays python-only."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bus.schemas.compiled import compiled_check, rs_regex
from bus.schemas.models import SchemaVersion
from bus.schemas.registry import schema_id
from bus.schemas.validation import tool_validator, validator_for, violations
from tests.unit.test_schema_refs import BROKEN


def version(schema: Any) -> SchemaVersion:
    return SchemaVersion(
        namespace="a", tenant="b", subject="s", version=1, schema_id=schema_id(schema),
        schema_=schema, created_at=datetime.now(UTC),
    )  # fmt: skip


def accepts(schema: Any, payload: Any) -> bool:
    validator = validator_for(version(schema))
    assert validator.check is not None, "the compiled check should apply to this schema"
    return violations(validator, payload) == []


@pytest.mark.parametrize(
    ("schema", "payload", "verdict"),
    [
        ({"multipleOf": 0.01}, 19.99, False),  # python-jsonschema divides in floats
        ({"multipleOf": 0.01}, 0.5, True),
        ({"pattern": r"^\d+$"}, "\u0661\u0662\u0663", True),  # Python's \d is any decimal digit
        ({"pattern": "^[a-z]+$"}, "abc\n", True),  # Python's $ matches before a final newline
        ({"pattern": r"^\s$"}, "\ufeff", False),  # not whitespace to Python
        ({"pattern": r"a\Z"}, "a", True),  # Python-only syntax
        ({"format": "email"}, "foo@", True),  # python-jsonschema only asks for an @
        ({"format": "date-time"}, "yesterday", False),
        ({"dependencies": {"a": ["b"]}}, {"a": 1}, True),  # not a 2020-12 keyword
        ({"uniqueItems": True}, [2**63, 9.223372036854776e18], False),  # equal numbers
        ({"$schema": "https://example.com/my-meta", "type": "string"}, "x", True),  # never fetched
        (
            {"patternProperties": {"^a$": {"type": "integer"}}, "additionalProperties": False},
            {"a\n": 1},
            True,
        ),
    ],
)
def test_python_jsonschemas_reading_is_kept(schema: dict[str, Any], payload: Any, verdict: bool) -> None:
    assert accepts(schema, payload) is verdict
    python = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert python.is_valid(payload) is verdict


def test_tool_schemas_treat_formats_as_annotations() -> None:
    schema = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}
    tool = tool_validator(schema)
    assert tool.check is not None
    assert violations(tool, {"at": "yesterday"}) == []
    assert [v.keyword for v in violations(tool, {"at": 5})] == ["type"]
    assert [v.keyword for v in violations(validator_for(version(schema)), {"at": "yesterday"})] == ["format"]
    assert tool_validator(schema) is tool  # cached, like the publish edge's


@pytest.mark.parametrize(
    "schema",
    [
        *BROKEN,  # stored before the registry's checks: python-jsonschema's 422 stays
        {"$defs": {"x": {"$id": "https://example.com/x", "type": "string"}}, "$ref": "#/$defs/x"},
        {"patternProperties": {r"^\d+$": {}}, "additionalProperties": False},
        {"maximum": 2**64},
        {"enum": [1, 2**53]},
        True,
    ],
)
def test_schemas_jsonschema_rs_is_not_trusted_with_stay_python_only(schema: Any) -> None:
    assert compiled_check(schema, formats=True) is None
    assert validator_for(version(schema)).check is None


def test_a_broken_schema_still_gives_its_ref_violation() -> None:
    found = violations(validator_for(version({"$ref": "#/$defs/missing"})), {"a": 1})
    assert [v.keyword for v in found] == ["$ref"]


def test_a_payload_jsonschema_rs_cannot_take_is_left_to_python_jsonschema() -> None:
    found = violations(validator_for(version({"type": "object"})), {1: "a non-str key"})
    assert found == []  # python-jsonschema's answer: a dict is an object


def test_many_violations_are_listed_lazily_and_bounded() -> None:
    """jsonschema-rs builds every error before the first; the list comes from python-jsonschema."""
    validator = validator_for(version({"type": "array", "items": {"type": "string"}}))
    payload = list(range(1_000_000))
    started = time.monotonic()
    found = violations(validator, payload)
    assert len(found) == 100 and found[0].pointer == "/0"
    assert time.monotonic() - started < 2.0  # jsonschema-rs's full list takes ~6 s


@pytest.mark.parametrize(
    ("pattern", "spelled"),
    [
        ("^x-", "^x-"),
        ("^[a-z][a-z0-9_-]*$", r"^[a-z][a-z0-9_-]*(?=\n?$)"),
        (r"^a\.b\$$", r"^a\.b\$(?=\n?$)"),
        ("[$]", "[$]"),
        ("^(?:ab|cd){2,3}?$", r"^(?:ab|cd){2,3}?(?=\n?$)"),
        ("^(?!tmp)[a-z]+", "^(?!tmp)[a-z]+"),
        (r"^\d+$", None),
        (r"\w", None),
        (r"\bx", None),
        ("[]a]", None),
        ("[[:alpha:]]", None),
        ("[a&&b]", None),
        ("a{,3}", None),
        ("a{2}+", None),
        ("a++", None),
        ("(?i)a", None),
        ("(?P<n>a)", None),
        ("(?<=a)b", None),
        ("a}", None),
        ("[a", None),
    ],
)
def test_patternproperties_regexes_both_engines_read_alike(pattern: str, spelled: str | None) -> None:
    assert rs_regex(pattern) == spelled
