"""The registry's rules, as pure functions shared by request handlers and the processor.

A handler checks a registration first to answer fast; the schema-commands processor
checks it again against the log's order, so two racing registrations can never both
skip the compatibility check.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from bus.errors import InvalidSchema, SchemaTooLarge
from bus.schemas.compatibility import breaking_changes
from bus.schemas.models import CompatibilityMode, CompatibilityReport, JsonSchema, SchemaVersion, SubjectMeta

__all__ = ["Decision", "check_schema", "decide", "pointer", "report", "schema_id"]

MAX_SCHEMA_BYTES = 262_144


def canonical(schema: JsonSchema) -> bytes:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def schema_id(schema: JsonSchema) -> str:
    """Equal schemas (up to key order and whitespace) have equal ids, on every worker."""
    return hashlib.sha256(canonical(schema)).hexdigest()


def check_schema(schema: JsonSchema) -> None:
    """InvalidSchema (422) unless schema is a valid draft 2020-12 schema with local refs only."""
    size = len(canonical(schema))
    if size > MAX_SCHEMA_BYTES:
        raise SchemaTooLarge("The schema is over the size limit", {"size": size, "limit": MAX_SCHEMA_BYTES})
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidSchema(
            "Not a valid JSON Schema (draft 2020-12)",
            {"pointer": pointer(exc.absolute_path), "keyword": str(exc.validator), "reason": exc.message},
        ) from None
    remote = remote_refs(schema, "")
    if remote:
        raise InvalidSchema(
            "Only local $ref ('#...') is allowed: the bus never fetches schemas", {"refs": remote[:20]}
        )


def remote_refs(node: Any, at: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str) and not value.startswith("#"):
                found.append({"pointer": f"{at}/{key}", "ref": value})
            found += remote_refs(value, f"{at}/{escape(str(key))}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += remote_refs(value, f"{at}/{i}")
    return found


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer(path: Any) -> str:
    return "".join(f"/{escape(str(p))}" for p in path)


@dataclass(frozen=True)
class Decision:
    """What registering a candidate does: reuse a version, add one, or refuse."""

    existing: SchemaVersion | None
    report: CompatibilityReport


def decide(meta: SubjectMeta, live: list[SchemaVersion], candidate_id: str, schema: JsonSchema) -> Decision:
    for version in live:
        if version.schema_id == candidate_id:
            return Decision(version, compatible_report(meta.compatibility, []))
    return Decision(None, report(meta.compatibility, schema, live))


def report(mode: CompatibilityMode, schema: JsonSchema, live: list[SchemaVersion]) -> CompatibilityReport:
    compared, changes = breaking_changes(mode, schema, [(v.version, v.schema_) for v in live])
    return CompatibilityReport(
        compatible=not changes, mode=mode, compared_with=compared, breaking_changes=changes
    )


def compatible_report(mode: CompatibilityMode, compared: list[int]) -> CompatibilityReport:
    return CompatibilityReport(compatible=True, mode=mode, compared_with=compared, breaking_changes=[])
