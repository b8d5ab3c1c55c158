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
from urllib.parse import unquote

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
    check_local_refs(schema)


# Keywords that apply a subschema to the same instance (no descent into a property or an
# item): a loop through these alone would never end, whatever the payload.
_IN_PLACE = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else")


def check_local_refs(schema: JsonSchema) -> None:
    """Every local $ref must point at a subschema that exists, and no chain of $ref and
    in-place applicators may lead back to where it started: either would fail every
    validation later (a publish would be refused for the schema's fault, not the payload's)."""
    if _has_nested_id(schema, top=True):
        return  # refs resolve against nested base URIs: left to the validator
    nodes = dict(_subschemas(schema, ""))
    anchors = {node["$anchor"]: at for at, node in nodes.items() if isinstance(node.get("$anchor"), str)}
    edges: dict[str, list[str]] = {}
    for at, node in nodes.items():
        targets = [f"{at}/{k}" for k in _IN_PLACE_ONE if isinstance(node.get(k), dict)]
        targets += [
            f"{at}/{k}/{i}" for k in _IN_PLACE for i, v in enumerate(node.get(k) or []) if isinstance(v, dict)
        ]
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = _resolve(ref, nodes, anchors)
            if target is None:
                raise InvalidSchema(
                    "A $ref points at nothing in the schema", {"pointer": f"{at}/$ref", "ref": ref}
                )
            targets.append(target)
        edges[at] = targets
    loop = _find_loop(edges)
    if loop is not None:
        raise InvalidSchema(
            "A $ref leads back to itself without descending into the payload: validation would never end",
            {"pointers": loop[:20]},
        )


_DATA = frozenset({"const", "enum", "default", "examples"})  # their values are data, not schemas
_NAMED = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def _subschemas(node: Any, at: str, names: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """Every object in the schema with its JSON pointer (a superset of the subschemas).
    names: node maps names to schemas (under properties, $defs, ...), so no key is data."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((at, node))
        for key, value in node.items():
            if names or key not in _DATA:
                found += _subschemas(value, f"{at}/{escape(str(key))}", not names and key in _NAMED)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _subschemas(value, f"{at}/{i}")
    return found


def _resolve(ref: str, nodes: dict[str, dict[str, Any]], anchors: dict[str, str]) -> str | None:
    fragment = unquote(ref[1:])
    if fragment == "" or fragment.startswith("/"):
        return fragment if fragment in nodes else None
    return anchors.get(fragment)


def _has_nested_id(node: Any, top: bool = False) -> bool:
    if isinstance(node, dict):
        if not top and isinstance(node.get("$id"), str):
            return True
        return any(_has_nested_id(v) for k, v in node.items() if k not in _DATA)
    if isinstance(node, list):
        return any(_has_nested_id(v) for v in node)
    return False


def _find_loop(edges: dict[str, list[str]]) -> list[str] | None:
    """A cycle in the in-place graph, as the pointers along it; None if there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(at: str, path: list[str]) -> list[str] | None:
        state[at] = 1
        for nxt in edges.get(at, ()):
            if state.get(nxt) == 1:
                return [*path, at, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, at])
                if found is not None:
                    return found
        state[at] = 2
        return None

    for start in edges:
        if start not in state:
            found = visit(start, [])
            if found is not None:
                return found
    return None


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
