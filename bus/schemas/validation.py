"""Publish-edge validation: payloads of a bound topic are checked against its schema.

Compiled validators are cached by schema id (equal schemas share one). Pure: which
version a topic's binding means is bus.schemas.service.bound_schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing.exceptions import Unresolvable

from bus.schemas.models import SchemaVersion, Violation
from bus.schemas.registry import pointer

__all__ = ["BoundSchema", "validator_for", "violations"]

MAX_CACHED_VALIDATORS = 1024
MAX_VIOLATIONS = 100  # per record: enough to fix a payload, bounded for a hostile one

_validators: dict[str, Draft202012Validator] = {}


@dataclass(frozen=True)
class BoundSchema:
    version: SchemaVersion
    validator: Draft202012Validator


def validator_for(version: SchemaVersion) -> Draft202012Validator:
    found = _validators.get(version.schema_id)
    if found is None:
        if len(_validators) >= MAX_CACHED_VALIDATORS:
            _validators.clear()
        found = Draft202012Validator(version.schema_, format_checker=Draft202012Validator.FORMAT_CHECKER)
        _validators[version.schema_id] = found
    return found


def violations(validator: Draft202012Validator, payload: Any) -> list[Violation]:
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
