"""Payload validation: payloads of a bound topic, and tool arguments and results, are
checked against their schema (draft 2020-12).

The verdict on a payload comes from jsonschema-rs (bus.schemas.compiled), set up to agree
with python-jsonschema, which the bus used alone before; the violations of a payload it
refuses come from python-jsonschema, lazily and at most MAX_VIOLATIONS of them, so they
read exactly as they always did. (jsonschema-rs lists every error before giving the first:
a 16 MiB array of wrong items would cost seconds.) A schema jsonschema-rs cannot be trusted
with is applied by python-jsonschema alone.

Validators are cached by schema id (equal schemas share one). Pure: which version a
topic's binding means is bus.schemas.service.bound_schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing.exceptions import Unresolvable

from bus.schemas.compiled import compiled_check, passes
from bus.schemas.models import JsonSchema, SchemaVersion, Violation
from bus.schemas.registry import pointer, schema_id

__all__ = ["BoundSchema", "SchemaValidator", "tool_validator", "validator_for", "violations"]

MAX_CACHED_VALIDATORS = 1024
MAX_VIOLATIONS = 100  # per record: enough to fix a payload, bounded for a hostile one


@dataclass(frozen=True, slots=True)
class SchemaValidator:
    """One schema, ready: check gives the verdict (None: report alone does), report lists
    the violations."""

    check: jsonschema_rs.Validator | None
    report: Draft202012Validator


@dataclass(frozen=True)
class BoundSchema:
    version: SchemaVersion
    validator: SchemaValidator


_validators: dict[tuple[str, bool], SchemaValidator] = {}


def validator_for(version: SchemaVersion) -> SchemaValidator:
    """The publish edge's validator for version: formats (date-time, email, uri, ...) are asserted."""
    return _cached(version.schema_id, version.schema_, formats=True)


def tool_validator(schema: JsonSchema) -> SchemaValidator:
    """A tool's input or output schema: formats are annotations, as they have always been there."""
    return _cached(schema_id(schema), schema, formats=False)


def _cached(key: str, schema: JsonSchema, *, formats: bool) -> SchemaValidator:
    found = _validators.get((key, formats))
    if found is None:
        if len(_validators) >= MAX_CACHED_VALIDATORS:
            _validators.clear()
        report = (
            Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
            if formats
            else Draft202012Validator(schema)
        )
        found = SchemaValidator(compiled_check(schema, formats=formats), report)
        _validators[(key, formats)] = found
    return found


def violations(validator: SchemaValidator | Draft202012Validator, payload: Any) -> list[Violation]:
    """How payload breaks the schema: [] if it matches, else at most MAX_VIOLATIONS,
    sorted by pointer then keyword (in python-jsonschema's order among equals).
    A bare Draft202012Validator is applied by python-jsonschema alone."""
    if isinstance(validator, SchemaValidator):
        if validator.check is not None and passes(validator.check, payload):
            return []
        validator = validator.report
    found: list[Violation] = []
    try:
        for error in validator.iter_errors(payload):
            found.append(as_violation(error))
            if len(found) >= MAX_VIOLATIONS:
                break
    except (RecursionError, Unresolvable) as exc:
        # Registration refuses such schemas; one stored before that check is still a 422, never a 500.
        return [
            Violation(
                pointer="", keyword="$ref", message=f"The schema cannot be applied ({type(exc).__name__})"
            )
        ]
    return sorted(found, key=lambda v: (v.pointer, v.keyword))


def as_violation(error: ValidationError) -> Violation:
    return Violation(
        pointer=pointer(error.absolute_path), keyword=str(error.validator), message=error.message
    )
