"""The compiled check (jsonschema-rs) gives python-jsonschema's verdict, and the bus reports
exactly python-jsonschema's violations, over a corpus of schemas and generated payloads.

The corpus: every schema literal in tests/ (found by reading the test modules' source),
the schemas in contract/ fixtures, the bench's schemas, the JSON Schemas of the client's
wire models (the bus's own envelopes among them) and the hand-written ones below, each for
the publish edge (formats asserted) and for tool calls (formats as annotations). Payloads
are generated from each schema with a seeded random generator, then mutated, so most
runs of a schema see both valid and invalid ones; the run is the same every time.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import inspect
import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import agentbus_client.models as client_models
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from bus.errors import InvalidSchema, SchemaTooLarge
from bus.schemas.compiled import passes
from bus.schemas.models import SchemaVersion
from bus.schemas.registry import check_schema, schema_id
from bus.schemas.validation import SchemaValidator, tool_validator, validator_for, violations
from bus.wire import ErrorBody

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS_PER_SCHEMA = 48

# Hand-written: the places where jsonschema-rs and python-jsonschema read a schema differently,
# and the keywords whose interplay is easiest to get wrong.
HAND_WRITTEN: list[Any] = [
    {"properties": {f: {"type": "string", "format": f} for f in (
        "date", "date-time", "time", "duration", "email", "idn-email", "hostname", "idn-hostname",
        "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template",
        "json-pointer", "relative-json-pointer", "regex", "color", "no-such-format")}},
    {"type": "array", "items": {"format": "date-time"}},
    {"format": "email"},
    {"format": "uri"},
    {"format": "ipv4"},
    {"$defs": {"n": {"type": "number", "minimum": 0}, "s": {"$anchor": "str", "type": "string"}},
     "type": "object", "properties": {"n": {"$ref": "#/$defs/n"}, "s": {"$ref": "#str"}}, "required": ["n"]},
    {"$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
     "next": {"$ref": "#/$defs/node"}}, "required": ["value"]}}, "$ref": "#/$defs/node"},
    {"$dynamicAnchor": "node", "type": "object", "properties": {"child": {"$dynamicRef": "#node"},
     "name": {"type": "string"}}},
    {"type": "object", "properties": {"a": {"type": "integer"}}, "unevaluatedProperties": False},
    {"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}], "unevaluatedProperties": False},
    {"anyOf": [{"properties": {"a": {"const": 1}}, "required": ["a"]},
               {"properties": {"b": {"type": "string"}}, "required": ["b"]}],
     "unevaluatedProperties": False},
    {"oneOf": [{"properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind"]},
               {"properties": {"kind": {"const": "b"}, "y": {"type": "string"}}, "required": ["kind"]}],
     "unevaluatedProperties": {"type": "boolean"}},
    {"if": {"properties": {"kind": {"const": "a"}}, "required": ["kind"]},
     "then": {"properties": {"x": {"type": "integer"}}, "required": ["x"]},
     "else": {"properties": {"y": {"type": "string"}}}, "unevaluatedProperties": False},
    {"$defs": {"base": {"properties": {"id": {"type": "string"}}}}, "$ref": "#/$defs/base",
     "properties": {"n": {"type": "number"}}, "unevaluatedProperties": False},
    {"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
    {"prefixItems": [{"type": "string"}], "unevaluatedItems": False},
    {"contains": {"type": "string"}, "minContains": 2, "maxContains": 3},
    {"contains": {"type": "integer"}, "unevaluatedItems": {"type": "string"}},
    {"anyOf": [{"type": "string", "minLength": 2}, {"type": "integer", "minimum": 10}]},
    {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
    {"not": {"anyOf": [{"type": "null"}, {"const": ""}]}},
    {"pattern": "^[a-z][a-z0-9_-]{2,15}$"},
    {"pattern": r"^\d+$"},
    {"pattern": r"^\w+\s\w+$"},
    {"pattern": r"\bword\b"},
    {"pattern": r"^\S+$"},
    {"pattern": r"^\D*$"},
    {"pattern": r"a\Z"},
    {"pattern": "^.$"},
    {"not": {"pattern": r"^\s$"}},
    {"propertyNames": {"pattern": "^[a-z]+$", "maxLength": 3}},
    {"patternProperties": {"^x-": {"type": "string"}, "^[a-z]+$": {"type": "integer"}},
     "additionalProperties": False},
    {"patternProperties": {r"^\d+$": {"type": "integer"}}, "additionalProperties": False},
    {"patternProperties": {"^a.c$": {"type": "null"}}, "unevaluatedProperties": False},
    {"type": "number", "multipleOf": 0.01},
    {"type": "number", "multipleOf": 0.1, "minimum": 0, "exclusiveMaximum": 100},
    {"multipleOf": 0.3},
    {"multipleOf": 3},
    {"multipleOf": 2.5},
    {"type": "integer", "minimum": -(2**63), "maximum": 2**64},
    {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 1e20},
    {"maximum": 9007199254740993},
    {"enum": [1, "1", True, None, [1], {"a": 1}]},
    {"const": {"a": [1, 2.0]}},
    {"const": False},
    {"const": 0},
    {"enum": [0, 1.5, "0"]},
    {"maximum": 2**64, "minimum": -(2**63)},  # past 2**53: python-only
    {"type": "array", "uniqueItems": True},
    {"dependentRequired": {"a": ["b", "c"]}},
    {"dependentSchemas": {"a": {"required": ["b"]}}},
    {"dependencies": {"a": ["b"]}},  # not a 2020-12 keyword: ignored
    {"$schema": "http://json-schema.org/draft-07/schema#", "dependencies": {"a": ["b"]}, "type": "object"},
    {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a": {"type": "object"}},
     "$ref": "#/definitions/a", "required": ["a"]},  # draft 7 would ignore the $ref's siblings
    {"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"a": {}},
     "unevaluatedProperties": False},
    {"properties": {"gone": False, "kept": True}},
    {"minProperties": 1, "maxProperties": 2, "propertyNames": {"minLength": 1}},
    {"type": ["string", "null"], "minLength": 2, "maxLength": 4},
    {"$defs": {"inner": {"$id": "https://example.com/inner", "type": "string", "minLength": 2}},
     "properties": {"x": {"$ref": "#/$defs/inner"}}},  # an embedded resource: python-only
    True,
    False,
]  # fmt: skip

_KEYWORDS = frozenset(Draft202012Validator.VALIDATORS) | {"$defs", "$anchor", "$dynamicAnchor"}


def literal_schemas(path: Path) -> Iterator[Any]:
    """Every dict literal in a module's source that names a draft 2020-12 keyword (payloads
    and request bodies that are no valid schema are left out by corpus())."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Dict):
            continue
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict) and all(isinstance(k, str) for k in value) and _KEYWORDS & set(value):
            yield value


def fixture_schemas(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("schema", "input_schema", "output_schema") and isinstance(item, dict | bool):
                yield item
            yield from fixture_schemas(item)
    elif isinstance(value, list):
        for item in value:
            yield from fixture_schemas(item)


def bench_schemas() -> list[Any]:
    sys.path.insert(0, str(ROOT / "bench"))  # bench/schemas.py imports its sibling bench/publish.py
    try:
        spec = importlib.util.spec_from_file_location("bench_schemas", ROOT / "bench" / "schemas.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return [module.small_case().schema, module.large_case().schema]


def model_schemas() -> list[Any]:
    models: list[type[BaseModel]] = [ErrorBody]
    for name in client_models.__all__:
        found = getattr(client_models, name)
        if inspect.isclass(found) and issubclass(found, BaseModel) and found is not BaseModel:
            models.append(found)
    schemas: list[Any] = []
    for model in models:
        try:
            schemas.append(
                {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}
            )
        except Exception:  # a model pydantic cannot describe (a generic parameter): not a schema
            continue
    return schemas


def corpus() -> list[Any]:
    found: list[Any] = list(HAND_WRITTEN)
    for path in sorted((ROOT / "tests").rglob("*.py")):
        found += literal_schemas(path)
    for path in sorted((ROOT / "contract").rglob("*.json")):
        found += fixture_schemas(json.loads(path.read_text()))
    found += bench_schemas() + model_schemas()
    unique: dict[str, Any] = {}
    for schema in found:
        try:
            check_schema(schema)
        except (InvalidSchema, SchemaTooLarge):
            continue  # one the bus never validates against (test_compiled.py has those)
        unique.setdefault(schema_id(schema), schema)
    return list(unique.values())


# --- payloads ---------------------------------------------------------------------------

STRINGS: list[str] = [
    "", "a", "abc", "abc\n", "Hello World", "hello_world", "é", "\u0661\u0662\u0663", "12", "0", "\ufeff",
    "\x1c", " ", "a b", "x-y", "word", "a word here", "éword", "user@example.com", "foo@", "@", "a@b",
    "2026-11-27", "2026-02-30", "2026-11-27T05:00:00Z", "2026-11-27T05:00:00", "2026-11-27t05:00:00+01:00",
    "05:00:00Z", "25:00:00Z", "P1D", "PT", "P1Y2M", "9c1f5a6e-3b2d-4c8e-9f00-1234567890ab",
    "9c1f5a6e3b2d4c8e9f001234567890ab", "127.0.0.1", "256.1.1.1", "::1", "fe80::1::1", "example.com",
    "-bad-.com", "https://example.com/x?y=1", "not a uri", "/relative", "{var}", "{bad", "/a/0", "a/b",
    "0/a", "1#", "^[a-z]+$", "(", "ünïcödé.example", "aXc", "a\nc", "abc\n\n", "x-ext", "1.2.3", "new",
    "paid", "ab", "abcd", "abcde",
]  # fmt: skip
NUMBERS: list[Any] = [
    0, 1, -1, 2, 3, 7, 10, 100, 1.0, -0.0, 0.5, 2.5, 7.5, 0.07, 0.3, 0.6, 19.99, 4.35, 1e20, 1e308,
    -1e308, 2**53 + 1, 9007199254740992.0, 2**63, 2**64, 2**64 + 1, -(2**63) - 1, 10**40, 0.1 + 0.2,
    9.223372036854776e18, 1.8446744073709552e19, -9.223372036854776e18, 10**20 + 1, 1e-300,
]  # fmt: skip
OTHERS: list[Any] = [None, True, False, [], [1], [1, 1], [1, 1.0], [True, 1], ["a", "b"], [[]], {}, {"a": 1},
                     {"a": None}, {"": 0}, {"a": 1, "b": 2}, {"a": [1, 2.0]}, [2**64, 1.8446744073709552e19],
                     [2**63, 9.223372036854776e18], [{"a": 1}, {"a": 1.0}], [[1, True], [1, 1]]]  # fmt: skip
POOL: list[Any] = [*STRINGS, *NUMBERS, *OTHERS]
NAMES = ["a", "b", "c", "id", "x", "y", "n", "s", "kind", "gone", "kept", "x-ext", "a\n", "\u0661", "abc",
         "aXc", "a\nc", "extra", "Z", "12", ""]  # fmt: skip


def resolve(root: Any, ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    node = root
    for token in ref[2:].split("/"):
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def literals(schema: Any) -> list[Any]:
    """Values the schema names, and numbers and strings at its bounds."""
    found: list[Any] = []
    if isinstance(schema, list):
        for item in schema:
            found += literals(item)
    if not isinstance(schema, dict):
        return found
    if "const" in schema:
        found.append(schema["const"])
    for key in ("enum", "examples"):
        if isinstance(schema.get(key), list):
            found += schema[key]
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = schema.get(key)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            found += [bound, bound - 1, bound + 1, bound - 0.5, bound + 0.5]
    divisor = schema.get("multipleOf")
    if isinstance(divisor, int | float) and not isinstance(divisor, bool):
        found += [divisor * k for k in (1, 3, 7, 1999)] + [divisor * 3 + divisor / 2]
    for key in ("minLength", "maxLength"):
        if isinstance(schema.get(key), int):
            found += ["x" * max(schema[key] + d, 0) for d in (-1, 0, 1)]
    for key, value in schema.items():
        if key not in ("const", "enum", "examples", "default"):
            found += literals(value)
    return found


class Generator:
    def __init__(self, root: Any, seed: str) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.known = literals(root)
        self.names = NAMES + [n for n in _property_names(root) if n not in NAMES]

    def any_value(self) -> Any:
        if self.known and self.rng.random() < 0.4:
            return copy.deepcopy(self.rng.choice(self.known))
        return copy.deepcopy(self.rng.choice(POOL))

    def value(self, schema: Any, depth: int = 0) -> Any:
        rng = self.rng
        if depth > 5 or not isinstance(schema, dict) or rng.random() < 0.08:
            return self.any_value()
        if isinstance(schema.get("$ref"), str) and rng.random() < 0.85:
            target = resolve(self.root, schema["$ref"])
            if target is not None:
                return self.value(target, depth + 1)
        if "const" in schema and rng.random() < 0.7:
            return copy.deepcopy(schema["const"])
        if isinstance(schema.get("enum"), list) and rng.random() < 0.8:
            return copy.deepcopy(rng.choice(schema["enum"]))
        branches = [s for k in ("anyOf", "oneOf", "allOf") for s in schema.get(k, [])]
        branches += [schema[k] for k in ("if", "then", "else") if k in schema]
        if branches and rng.random() < 0.5:
            return self.value(rng.choice(branches), depth + 1)
        return self.typed(schema, self.type_of(schema), depth)

    def type_of(self, schema: dict[str, Any]) -> str:
        declared = schema.get("type")
        if isinstance(declared, str):
            return declared
        if isinstance(declared, list) and declared:
            return str(self.rng.choice(declared))
        if any(k in schema for k in ("properties", "patternProperties", "required", "propertyNames")):
            return "object"
        if any(k in schema for k in ("items", "prefixItems", "contains", "uniqueItems")):
            return "array"
        if any(k in schema for k in ("pattern", "format", "minLength", "maxLength")):
            return "string"
        if any(k in schema for k in ("minimum", "maximum", "multipleOf", "exclusiveMinimum")):
            return "number"
        return str(self.rng.choice(["object", "array", "string", "number", "integer", "boolean", "null"]))

    def typed(self, schema: dict[str, Any], kind: str, depth: int) -> Any:
        rng = self.rng
        if kind == "object":
            result: dict[str, Any] = {}
            required = schema.get("required", [])
            for name, sub in (schema.get("properties") or {}).items():
                if rng.random() < (0.9 if name in required else 0.5):
                    result[name] = self.value(sub, depth + 1)
            for name in required:
                if name not in result and rng.random() < 0.9:
                    result[name] = self.any_value()
            for _ in range(rng.choice([0, 0, 1, 2])):
                name = rng.choice(self.names)
                sub = _pattern_schema(schema, name)
                result[name] = self.value(sub, depth + 1) if sub is not None else self.any_value()
            return result
        if kind == "array":
            prefix = schema.get("prefixItems") or []
            items = schema.get("items", schema.get("contains"))
            length = rng.choice([0, 1, 2, 3, 4, len(prefix), len(prefix) + 1])
            made = [self.value(prefix[i] if i < len(prefix) else items, depth + 1) for i in range(length)]
            if made and rng.random() < 0.2:
                made.append(copy.deepcopy(made[0]))  # uniqueItems
            return made
        if kind == "string":
            strings = [v for v in self.known if isinstance(v, str)]
            return rng.choice(strings if strings and rng.random() < 0.5 else STRINGS)
        if kind in ("number", "integer"):
            numbers = [v for v in self.known if isinstance(v, int | float) and not isinstance(v, bool)]
            return rng.choice(numbers if numbers and rng.random() < 0.6 else NUMBERS)
        if kind == "boolean":
            return rng.choice([True, False])
        return None if rng.random() < 0.9 else self.any_value()

    def mutated(self, value: Any) -> Any:
        """value with one nested value replaced, a key dropped or a key added."""
        rng = self.rng
        if isinstance(value, dict) and value and rng.random() < 0.7:
            key = rng.choice(sorted(value))
            choice = rng.random()
            if choice < 0.3:
                del value[key]
            elif choice < 0.5:
                value[rng.choice(self.names)] = self.any_value()
            else:
                value[key] = self.mutated(value[key])
            return value
        if isinstance(value, list) and value and rng.random() < 0.7:
            index = rng.randrange(len(value))
            value[index] = self.mutated(value[index])
            return value
        return self.any_value()

    def payloads(self, count: int) -> list[Any]:
        made: list[Any] = []
        for _ in range(count):
            payload = self.value(self.root)
            if self.rng.random() < 0.4:
                payload = self.mutated(payload)
            made.append(payload)
        return made


def _property_names(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("properties", "patternProperties", "dependentRequired", "dependentSchemas"):
            if isinstance(node.get(key), dict):
                found += list(node[key])
        for value in node.values():
            found += _property_names(value)
    elif isinstance(node, list):
        for value in node:
            found += _property_names(value)
    return found


def _pattern_schema(schema: dict[str, Any], name: str) -> Any:
    for pattern, sub in (schema.get("patternProperties") or {}).items():
        if pattern.strip("^$") == name:
            return sub
    return None


# --- the test ---------------------------------------------------------------------------


def version_of(schema: Any) -> SchemaVersion:
    return SchemaVersion(
        namespace="t", tenant="t", subject="s", version=1, schema_id=schema_id(schema),
        schema_=schema, created_at=datetime.now(UTC),
    )  # fmt: skip


CORPUS = corpus()


def test_the_corpus_is_broad() -> None:
    assert len(CORPUS) >= 150
    fast = [s for s in CORPUS if validator_for(version_of(s)).check is not None]
    assert len(fast) >= 0.85 * len(CORPUS)  # the compiled check applies to nearly all of it


@pytest.mark.parametrize(
    "formats", [True, False], ids=["publish-formats-asserted", "tools-formats-annotations"]
)
def test_verdicts_and_violations_equal_python_jsonschemas(formats: bool) -> None:
    verdict_differs: list[tuple[Any, Any, bool]] = []
    report_differs: list[tuple[Any, Any]] = []
    valid = invalid = 0
    for schema in CORPUS:
        ours: SchemaValidator = validator_for(version_of(schema)) if formats else tool_validator(schema)
        python = (
            Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
            if formats
            else Draft202012Validator(schema)
        )
        generator = Generator(schema, seed=f"{schema_id(schema)}/{formats}")
        for payload in generator.payloads(PAYLOADS_PER_SCHEMA) + POOL:
            expected = violations(python, payload)  # the bus before: python-jsonschema alone
            if ours.check is not None:
                verdict = passes(ours.check, payload)
                if verdict != (not expected):
                    verdict_differs.append((schema, payload, verdict))
            if violations(ours, payload) != expected:
                report_differs.append((schema, payload))
            valid += not expected
            invalid += bool(expected)
    assert verdict_differs == [], f"{len(verdict_differs)} verdicts differ, e.g. {verdict_differs[:5]}"
    assert report_differs == [], f"{len(report_differs)} reports differ, e.g. {report_differs[:5]}"
    total = valid + invalid
    assert total >= 20_000
    assert valid >= 0.15 * total and invalid >= 0.15 * total, (valid, invalid)
