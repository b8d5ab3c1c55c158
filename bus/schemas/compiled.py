"""The compiled check: jsonschema-rs, set up to give python-jsonschema's verdict on a payload.

The bus has always validated with python-jsonschema's Draft202012Validator, and a payload
that passed yesterday must pass today. jsonschema-rs answers the same question 40-80x
faster (bench/validation.py), but reads a few things differently; where it does, it is given
python-jsonschema's reading (a Python callback costs ~0.1 µs plus its own work, and runs only
where its keyword applies):

- format: every format jsonschema-rs or python-jsonschema knows is checked by
  python-jsonschema's own format checker (one it cannot check here passes, as it did);
- pattern: a regex both engines read alike (rs_regex) is jsonschema-rs's, with Python's `$`
  (the end, or before a final newline) spelled out; any other is Python's `re.search` (in
  ECMA 262, jsonschema-rs's reading, `\\d`, `\\w`, `\\s` and `\\b` are ASCII-only, and
  Python-only syntax such as `\\Z` would not compile);
- multipleOf: python-jsonschema's float arithmetic (jsonschema-rs is exact in decimal:
  19.99 is a multiple of 0.01 there, not here);
- patternProperties: as pattern, but a regex the engines may read differently makes the
  schema python-only (below);
- uniqueItems: Python's (strings by set(), anything else by python-jsonschema itself:
  jsonschema-rs tells 2**64 from the double 1.8446744073709552e19);
- dependencies (a draft 7 keyword jsonschema-rs still applies) is ignored, as in 2020-12;
- the dialect is always 2020-12, whatever `$schema` says (jsonschema-rs's Draft202012Validator
  does that too; the root `$schema` is dropped so that no meta-schema URI is ever looked up);
- nothing is fetched: a `$ref` outside the schema finds nothing.

`compiled_check` gives None, and python-jsonschema alone answers, for a schema the registry
would refuse (stored before a check existed: its cycles and missing refs keep their 422),
one with an embedded resource (a nested `$id` or `$schema`), a patternProperties regex
the engines may read differently, a number of magnitude 2**53 or more (a bound, a const,
an enum value: jsonschema-rs compares those with the payload's numbers differently), and
anything jsonschema-rs cannot compile.
tests/unit/test_validation_differential.py holds the two verdicts equal over a corpus.

jsonschema-rs recurses on the native stack: a payload nested some 30,000 deep would overflow
it and end the process. Every payload comes through the HTTP edge, whose JSON parser refuses
nesting over 200.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from bus.schemas.models import JsonSchema
from bus.schemas.registry import check_schema

__all__ = ["compiled_check", "passes", "rs_regex"]

# Every format jsonschema-rs checks when asked to (its draft 2020-12 vocabulary).
RS_FORMATS = (
    "date", "date-time", "time", "duration", "email", "idn-email", "hostname", "idn-hostname",
    "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template",
    "json-pointer", "relative-json-pointer", "regex",
)  # fmt: skip

_FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER


def _python_format(name: str) -> Callable[[str], bool]:
    # conforms() is True for a format this python-jsonschema cannot check (a missing extra).
    return lambda value: _FORMAT_CHECKER.conforms(value, name)


# Also the formats python-jsonschema checks that jsonschema-rs would ignore (none today).
_PYTHON_FORMATS: dict[str, Callable[..., bool]] = {
    name: _python_format(name) for name in sorted({*RS_FORMATS, *_FORMAT_CHECKER.checkers})
}


class _PythonPattern:
    """pattern as python-jsonschema reads it: Python's re.search on strings."""

    def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: list[str | int]) -> None:
        self._search = re.compile(value).search

    def validate(self, instance: Any) -> None:
        if isinstance(instance, str) and self._search(instance) is None:
            raise ValueError("does not match")


class _PythonMultipleOf:
    """multipleOf as python-jsonschema computes it: a float divisor divides in floats."""

    def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: list[str | int]) -> None:
        self._divisor: int | float = value

    def validate(self, instance: Any) -> None:
        if isinstance(instance, bool) or not isinstance(instance, int | float):
            return
        if not is_multiple(instance, self._divisor):
            raise ValueError("not a multiple")


def is_multiple(value: int | float, divisor: int | float) -> bool:
    if isinstance(divisor, float):
        quotient = value / divisor  # OverflowError for an int beyond a double: as python-jsonschema
        try:
            return int(quotient) == quotient
        except OverflowError:  # the quotient is infinite: exact arithmetic decides
            return (Fraction(value) / Fraction(divisor)).denominator == 1
    return value % divisor == 0


_UNIQUE = Draft202012Validator({"uniqueItems": True})


class _PythonUniqueItems:
    """uniqueItems as python-jsonschema decides it (jsonschema-rs takes 2**64 and the double
    1.8446744073709552e19 for different numbers): strings by set(), anything else by
    python-jsonschema itself, ~5 µs a call."""

    def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: list[str | int]) -> None:
        self._wanted = value is True

    def validate(self, instance: Any) -> None:
        if not self._wanted or not isinstance(instance, list):
            return
        if all(type(item) is str for item in instance):  # the common case: equal means ==
            unique = len(set(instance)) == len(instance)
        else:
            unique = _UNIQUE.is_valid(instance)
        if not unique:
            raise ValueError("has non-unique elements")


class _Ignored:
    """A keyword draft 2020-12 does not have."""

    def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: list[str | int]) -> None:
        pass

    def validate(self, instance: Any) -> None:
        pass


# A pattern both engines read alike is left to jsonschema-rs (spelled by rs_regex); any other
# is renamed to this keyword in jsonschema-rs's copy of the schema.
_PYTHON_PATTERN = "$bus:python-pattern"

_KEYWORDS: dict[str, Any] = {
    _PYTHON_PATTERN: _PythonPattern,
    "multipleOf": _PythonMultipleOf,
    "uniqueItems": _PythonUniqueItems,
    "dependencies": _Ignored,
}


def _refuse_retrieval(uri: str, /) -> Any:
    raise ValueError(f"the bus never fetches schemas ({uri})")


def compiled_check(schema: JsonSchema, *, formats: bool) -> jsonschema_rs.Validator | None:
    """jsonschema-rs's validator for schema, or None where python-jsonschema must answer alone.
    formats: assert formats (the publish edge) or treat them as annotations (tool calls)."""
    if not isinstance(schema, dict):
        return None  # true or false: nothing to gain
    try:
        check_schema(schema)  # InvalidSchema, SchemaTooLarge: stored before the registry's checks
        prepared = _for_rs(schema, root=True)  # _PythonOnly
        return jsonschema_rs.Draft202012Validator(
            prepared,
            validate_formats=formats,
            formats=_PYTHON_FORMATS if formats else None,
            keywords=_KEYWORDS,
            retriever=_refuse_retrieval,
        )
    except Exception:  # any refusal above, or what jsonschema-rs cannot compile: python-jsonschema applies it
        return None


def passes(check: jsonschema_rs.Validator, payload: Any) -> bool:
    """True if payload matches. False also when jsonschema-rs cannot take the payload (a
    value JSON has no word for) or a Python check raised: python-jsonschema then decides,
    and raises as it always did."""
    try:
        return check.is_valid(payload)
    except Exception:
        return False


class _PythonOnly(Exception):
    pass


_DATA = frozenset({"const", "enum", "default", "examples"})  # their values are data, not schemas
_NAMED = frozenset({"properties", "$defs", "definitions", "dependentSchemas"})  # names -> schemas


def _for_rs(node: Any, *, root: bool = False) -> Any:
    """A copy of the schema for jsonschema-rs: the root $schema dropped, patternProperties
    regexes rewritten by rs_regex. _PythonOnly where that cannot be done faithfully."""
    if isinstance(node, list):
        return [_for_rs(item) for item in node]
    if not isinstance(node, dict):
        return node
    if not root and ("$id" in node or "$schema" in node):
        raise _PythonOnly  # an embedded resource: its own base URI, maybe its own dialect
    copy: dict[str, Any] = {}
    for key, value in node.items():
        if root and key == "$schema":
            continue  # always draft 2020-12, as python-jsonschema's Draft202012Validator
        if key == _PYTHON_PATTERN:
            raise _PythonOnly  # a keyword of ours in the user's schema: ignored by python-jsonschema
        if key == "pattern" and isinstance(value, str):
            spelled = rs_regex(value)
            if spelled is None:
                copy[_PYTHON_PATTERN] = value
            else:
                copy[key] = spelled
        elif key in _DATA or not isinstance(value, dict | list):
            if _has_big_number(value):
                raise _PythonOnly
            copy[key] = value
        elif key == "patternProperties" and isinstance(value, dict):
            copy[key] = {_portable(pattern): _for_rs(sub) for pattern, sub in value.items()}
        elif key in _NAMED and isinstance(value, dict):
            copy[key] = {name: _for_rs(sub) for name, sub in value.items()}
        else:
            copy[key] = _for_rs(value)
    return copy


# Past 2**53 a double no longer holds every integer, and jsonschema-rs compares such numbers
# with the payload's differently from Python (2**63 and 9.223372036854776e18 are not equal there).
_BIG = 2**53


def _has_big_number(value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return abs(value) >= _BIG
    if isinstance(value, dict):
        return any(_has_big_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_big_number(v) for v in value)
    return False


def _portable(pattern: str) -> str:
    found = rs_regex(pattern)
    if found is None:
        raise _PythonOnly
    return found


_ESCAPABLE = frozenset(string.punctuation)  # \. \$ \- ...: the character itself in both engines
_PYTHON_END = r"(?=\n?$)"  # Python's $ (no MULTILINE): the end, or just before a final newline
_QUANTIFIER = re.compile(r"\{[0-9]+(,[0-9]*)?\}")


def rs_regex(pattern: str) -> str | None:
    """pattern spelled for jsonschema-rs so that it matches exactly the strings Python's
    re.search matches; None if it uses anything the two engines may read differently.

    Kept: literal characters, escaped punctuation, `.` (all but a newline in both), `^`,
    classes of literals and ranges, groups, (?:...), (?=...), (?!...), alternation, and
    greedy or lazy quantifiers. Rewritten: `$`. Refused: every other escape (\\d, \\w, \\s
    and \\b are Unicode-wide in Python, ASCII in ECMA 262), flags, named groups,
    backreferences, lookbehind, possessive quantifiers, a `{` that is not a quantifier,
    and classes that nest or start with `]`."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if pattern[i + 1 : i + 2] not in _ESCAPABLE:
                return None
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            end = _class_end(pattern, i)
            if end is None:
                return None
            out.append(pattern[i:end])
            i = end
            continue
        if c == "(" and pattern.startswith("(?", i):
            if not pattern.startswith(("(?:", "(?=", "(?!"), i):
                return None
            out.append(pattern[i : i + 3])
            i += 3
            continue
        if c == "{":
            quantifier = _QUANTIFIER.match(pattern, i)
            if quantifier is None:
                return None
            out.append(quantifier.group())
            i = quantifier.end()
        elif c == "}":
            return None
        elif c == "$":
            out.append(_PYTHON_END)
            i += 1
        else:
            out.append(c)
            i += 1
        if c in "*+?{" and pattern[i : i + 1] == "+":
            return None  # possessive
    return "".join(out)


def _class_end(pattern: str, start: int) -> int | None:
    """The index just past the class opening at start; None if the engines may disagree on it."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        return None  # a literal ] in Python, an empty class in ECMA 262
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if pattern[i + 1 : i + 2] not in _ESCAPABLE:
                return None
            i += 2
        elif c == "[" or pattern[i : i + 2] in ("&&", "--", "~~"):
            return None  # nested classes and set operations in Rust's regex, literals in Python
        elif c == "]":
            return i + 1
        else:
            i += 1
    return None
