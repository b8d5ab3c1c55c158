"""Schema compatibility: where a new JSON Schema accepts less than an old one.

`narrowings(old, new)` compares two schemas structurally, keyword by keyword, and recurses into
`properties/<name>` (names in both), `items`, `prefixItems/<i>`, `additionalProperties`,
`patternProperties/<pattern>` (same pattern in both), `$defs/<name>` and `definitions/<name>`.
`breaking_changes` applies it per compatibility mode: the backward check is `narrowings(earlier, candidate)`,
the forward check is `narrowings(candidate, earlier)`.

| change name | what it means |
|---|---|
| type_narrowed | new `type` rejects a type old allowed, or new is the `false` schema and old was not |
| enum_value_removed | a value old allowed by `enum`/`const` is missing from new's `enum`/`const` |
| enum_added | new has an `enum`, old had neither `enum` nor `const` |
| const_changed | new has a `const`, old had no `enum`/`const` or a different `const` |
| required_added | new requires a property old did not, and new's schema for it has no `default` |
| property_removed_closed | a property (or pattern) of old is gone from new, and new closes the object |
| additional_properties_closed | new sets `additionalProperties` (or `unevaluatedProperties`) false, old not |
| minimum_raised | new lower bound (`minimum`/`exclusiveMinimum`) is higher, or newly added |
| maximum_lowered | new upper bound (`maximum`/`exclusiveMaximum`) is lower, or newly added |
| multiple_of_changed | new has `multipleOf`, and old had none or old's is not a multiple of new's |
| min_length_raised | new `minLength` is higher, or newly added |
| max_length_lowered | new `maxLength` is lower, or newly added |
| pattern_changed | new has a `pattern`, and old had none or a different one |
| format_added | new has a `format`, and old had none or a different one |
| min_items_raised | new `minItems` is higher, or newly added |
| max_items_lowered | new `maxItems` is lower, or newly added |
| unique_items_added | new sets `uniqueItems: true`, old did not |
| min_properties_raised | new `minProperties` is higher, or newly added |
| max_properties_lowered | new `maxProperties` is lower, or newly added |
| subschema_changed | a keyword not compared structurally (`$ref`, `anyOf`, ...) is in new, differs from old |

Rules of reading:
- "integer" is a subset of "number". No `type` means any type, except that an old schema with only
  `enum`/`const` allows just its values' types. `true` is `{}`; nothing narrows an old `false`.
- Absent minLength/minItems/minProperties count as 0. Bounds compare the tightest of `minimum` and
  `exclusiveMinimum` (draft-4 boolean `exclusiveMinimum` too), likewise for maximum.
- Numeric, string, array and object keywords count only where both schemas allow that kind of value.
- subschema_changed is conservative. `$ref`, `$dynamicRef`, `anyOf`, `oneOf`, `allOf`, `not`, `if`,
  `then`, `else`, `dependentRequired`, `dependentSchemas`, `dependencies`, `contains`, `minContains`,
  `maxContains`, `propertyNames`, `unevaluatedItems`, `additionalItems`, non-false `unevaluatedProperties`
  and tuple-form `items` count as changed when their canonical JSON (annotations stripped) differs, even
  if the change only widens.
- Widenings are not reported (dropping a constraint, adding an enum value, widening a type...). Adding an
  optional property to an open object is deliberately compatible, though old data could carry that name
  with another shape: most evolutions add optional fields, and flagging them all would force mode NONE.
- A property or pattern on one side only is compared with the schema governing it on the other side (a
  matching `patternProperties` schema, else an `additionalProperties` schema). With no such schema, adding
  it to an open object is compatible (above) and dropping it from a closed one is property_removed_closed.
- Annotations never matter: title, description, examples, $comment, default, deprecated, readOnly,
  writeOnly, $schema, $id. Unknown keywords are ignored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from bus.schemas.models import BreakingChange, CompatibilityMode, JsonSchema

__all__ = ["breaking_changes", "narrowings"]

Schema = dict[str, Any]
ALL_TYPES = frozenset({"null", "boolean", "object", "array", "number", "string"})
ANNOTATIONS = frozenset(
    {"title", "description", "examples", "$comment", "default", "deprecated", "readOnly", "writeOnly"}
    | {"$schema", "$id"}
)
OPAQUE = (
    "$ref", "$dynamicRef", "anyOf", "oneOf", "allOf", "not", "if", "then", "else", "dependentRequired",
    "dependentSchemas", "dependencies", "contains", "minContains", "maxContains", "propertyNames",
    "unevaluatedItems", "additionalItems",
)  # fmt: skip
# Where subschemas (or lists of them) sit, so annotations can be stripped without touching names or values.
_SUB = frozenset(
    {"anyOf", "oneOf", "allOf", "not", "if", "then", "else", "contains", "propertyNames", "unevaluatedItems"}
    | {
        "additionalItems",
        "additionalProperties",
        "unevaluatedProperties",
        "items",
        "prefixItems",
        "contentSchema",
    }
)
_SUB_MAP = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}
)


@dataclass
class _Walk:
    """Collects changes; `old`/`new` name the two schemas in messages."""

    old: str
    new: str
    direction: Literal["backward", "forward"]
    version: int | None
    changes: list[BreakingChange] = field(default_factory=list)

    def add(self, ptr: str, kind: str, message: str) -> None:
        msg = message[:1].upper() + message[1:]
        bc = BreakingChange(
            pointer=ptr, change=kind, message=msg, direction=self.direction, version=self.version
        )
        if bc not in self.changes:
            self.changes.append(bc)


def narrowings(old: JsonSchema, new: JsonSchema) -> list[BreakingChange]:
    """Places where `new` accepts less than `old` (an instance valid under old may be invalid under new).

    Each result has direction="backward", version=None; pointer is a JSON pointer into the schemas."""
    walk = _Walk("the old schema", "the new schema", "backward", None)
    _compare(old, new, "", walk)
    return walk.changes


def breaking_changes(
    mode: CompatibilityMode, candidate: JsonSchema, history: list[tuple[int, JsonSchema]]
) -> tuple[list[int], list[BreakingChange]]:
    """Check `candidate` against `history` (earlier live versions, ascending) under `mode`.

    Returns (versions compared with, breaking changes); each change carries its earlier version."""
    if not (mode.backward or mode.forward) or not history:
        return [], []
    targets = history if mode.transitive else history[-1:]
    changes: list[BreakingChange] = []
    for version, earlier in targets:
        label = f"version {version}"
        if mode.backward:
            walk = _Walk(label, "the candidate", "backward", version)
            _compare(earlier, candidate, "", walk)
            changes += walk.changes
        if mode.forward:
            walk = _Walk("the candidate", label, "forward", version)
            _compare(candidate, earlier, "", walk)
            changes += walk.changes
    return [version for version, _ in targets], changes


# --- helpers -------------------------------------------------------------------------------------------


def _ptr(base: str, *tokens: str | int) -> str:
    """Extend a JSON pointer (RFC 6901: ~ becomes ~0, / becomes ~1)."""
    return base + "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def _norm(value: Any) -> Any:
    """JSON value with 1.0 == 1, for equality tests."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _canon(value: Any) -> str:
    return json.dumps(_norm(value), sort_keys=True, separators=(",", ":"))


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _strip(schema: Any) -> Any:
    """A schema without annotation keywords, at every level that holds a schema."""
    if isinstance(schema, list):
        return [_strip(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key in ANNOTATIONS:
            continue
        if key in _SUB_MAP and isinstance(value, dict):
            out[key] = {name: _strip(sub) for name, sub in value.items()}
        elif key in _SUB:
            out[key] = _strip(value)
        else:
            out[key] = value
    return out


def _num(s: Schema, kw: str) -> float | None:
    value = s.get(kw)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def _list(s: Schema, kw: str) -> list[Any]:
    value = s.get(kw)
    return value if isinstance(value, list) else []


def _map(s: Schema, kw: str) -> Schema:
    value = s.get(kw)
    return value if isinstance(value, dict) else {}


def _json_type(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return "integer"
    names = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}
    return names.get(type(value), "array" if isinstance(value, list) else "object")


def _declared_types(s: Schema) -> frozenset[str] | None:
    t = s.get("type")
    if isinstance(t, str):
        return frozenset({t})
    if isinstance(t, list) and all(isinstance(x, str) for x in t):
        return frozenset(t)
    return None


def _values(s: Schema) -> list[Any] | None:
    """The values `enum` and `const` allow together; None when neither is there."""
    enum = s.get("enum")
    if "const" in s:
        allowed = not isinstance(enum, list) or _canon(s["const"]) in {_canon(v) for v in enum}
        return [s["const"]] if allowed else []
    return enum if isinstance(enum, list) else None


def _effective_types(s: Schema) -> frozenset[str] | None:
    """Declared types; else the types of enum/const values; None means any type."""
    declared = _declared_types(s)
    if declared is not None:
        return declared
    values = _values(s)
    return None if values is None else frozenset(_json_type(v) for v in values)


def _allows(types: frozenset[str] | None, t: str) -> bool:
    return types is None or t in types or (t == "integer" and "number" in types)


def _both_allow(o: Schema, n: Schema, kind: str) -> bool:
    kinds = {"number", "integer"} if kind == "number" else {kind}
    return all(types is None or bool(kinds & types) for types in (_effective_types(o), _effective_types(n)))


# --- one check per keyword family ----------------------------------------------------------------------


def _compare(old: Any, new: Any, ptr: str, w: _Walk) -> None:
    if old is False or new is True:
        return
    if new is False:
        w.add(ptr, "type_narrowed", f"{w.new} is `false` and accepts nothing here; {w.old} accepts values")
        return
    o: Schema = old if isinstance(old, dict) else {}
    n: Schema = new if isinstance(new, dict) else {}
    for check in _CHECKS:
        check(o, n, ptr, w)


def _check_type(o: Schema, n: Schema, ptr: str, w: _Walk) -> None:
    new_types = _declared_types(n)
    if new_types is None:
        return
    old_types = _effective_types(o)
    missing = sorted(t for t in (ALL_TYPES if old_types is None else old_types) if not _allows(new_types, t))
    if missing:
        msg = f"{w.new} rejects type {', '.join(missing)}, which {w.old} allows"
        w.add(_ptr(ptr, "type"), "type_narrowed", msg)


def _check_values(o: Schema, n: Schema, ptr: str, w: _Walk) -> None:
    old_values = _values(o)
    if "const" in n:
        const = n["const"]
        if "const" in o and _canon(o["const"]) != _canon(const):
            msg = f"{w.new} requires the constant {_show(const)}, {w.old} requires {_show(o['const'])}"
            w.add(_ptr(ptr, "const"), "const_changed", msg)
        elif old_values is None:
            msg = f"{w.new} requires the constant {_show(const)}, {w.old} has no enum or const"
            w.add(_ptr(ptr, "const"), "const_changed", msg)
        elif "const" not in o:
            _removed_values(old_values, [const], _ptr(ptr, "const"), w)
    enum = n.get("enum")
    if isinstance(enum, list):
        if old_values is None:
            w.add(_ptr(ptr, "enum"), "enum_added", f"{w.new} restricts values to an enum, {w.old} has none")
        else:
            _removed_values(old_values, enum, _ptr(ptr, "enum"), w)


def _removed_values(old_values: list[Any], new_values: list[Any], pointer: str, w: _Walk) -> None:
    kept = {_canon(v) for v in new_values}
    removed = [v for v in old_values if _canon(v) not in kept]
    if removed:
        msg = f"{w.new} does not allow {_show(removed)}, which {w.old} allows"
        w.add(pointer, "enum_value_removed", msg)


def _bound(s: Schema, inclusive_kw: str, exclusive_kw: str, lower: bool) -> tuple[float, bool, str] | None:
    """The tightest bound as (value, exclusive, keyword), reading draft-4 boolean exclusives too."""
    inclusive, exclusive = _num(s, inclusive_kw), _num(s, exclusive_kw)
    found = [(inclusive, s.get(exclusive_kw) is True, inclusive_kw)] if inclusive is not None else []
    found += [(exclusive, True, exclusive_kw)] if exclusive is not None else []
    if not found:
        return None
    return max(found, key=lambda b: (b[0], b[1])) if lower else min(found, key=lambda b: (b[0], not b[1]))


def _describe(b: tuple[float, bool, str] | None, lower: bool) -> str:
    if b is None:
        return "has no bound"
    op = (">" if lower else "<") + ("" if b[1] else "=")
    return f"requires {op} {b[0]}"


def _check_numbers(o: Schema, n: Schema, ptr: str, w: _Walk) -> None:
    if not _both_allow(o, n, "number"):
        return
    for lower, kws, change in (
        (True, ("minimum", "exclusiveMinimum"), "minimum_raised"),
        (False, ("maximum", "exclusiveMaximum"), "maximum_lowered"),
    ):
        new_b, old_b = _bound(n, *kws, lower), _bound(o, *kws, lower)
        if new_b is None:
            continue
        sign = 1 if lower else -1
        if old_b is None or (sign * new_b[0], new_b[1]) > (sign * old_b[0], old_b[1]):
            msg = f"{w.new} {_describe(new_b, lower)}, {w.old} {_describe(old_b, lower)}"
            w.add(_ptr(ptr, new_b[2]), change, msg)
    step = _num(n, "multipleOf")
    if step is not None and not _divides(step, _num(o, "multipleOf")):
        msg = f"{w.new} requires a multiple of {step}, {w.old} requires {o.get('multipleOf', 'none')}"
        w.add(_ptr(ptr, "multipleOf"), "multiple_of_changed", msg)


def _divides(step: float, old_step: float | None) -> bool:
    if old_step is None or old_step == step:
        return old_step is not None
    try:
        return Fraction(str(old_step)) % Fraction(str(step)) == 0
    except (ValueError, ZeroDivisionError):
        return False


def _count(o: Schema, n: Schema, ptr: str, w: _Walk, kw: str, change: str) -> None:
    """A minimum count (absent = 0) raised, or a maximum count (absent = unbounded) lowered."""
    new_v, old_v = _num(n, kw), _num(o, kw)
    if new_v is None:
        return
    if (new_v > (old_v or 0)) if kw.startswith("min") else (old_v is None or new_v < old_v):
        w.add(_ptr(ptr, kw), change, f"{w.new} has {kw} {new_v}, {w.old} has {o.get(kw, 'none')}")


def _same_or_absent(o: Schema, n: Schema, ptr: str, w: _Walk, kw: str, change: str) -> None:
    if kw in n and (kw not in o or _canon(o[kw]) != _canon(n[kw])):
        msg = f"{w.new} has {kw} {_show(n[kw])}, {w.old} has {_show(o[kw]) if kw in o else 'none'}"
        w.add(_ptr(ptr, kw), change, msg)


def _check_strings(o: Schema, n: Schema, ptr: str, w: _Walk) -> None:
    if _both_allow(o, n, "string"):
        _count(o, n, ptr, w, "minLength", "min_length_raised")
        _count(o, n, ptr, w, "maxLength", "max_length_lowered")
        _same_or_absent(o, n, ptr, w, "pattern", "pattern_changed")
        _same_or_absent(o, n, ptr, w, "format", "format_added")


def _check_arrays(o: Schema, n: Schema, ptr: str, w: _Walk) -> None:
    if not _both_allow(o, n, "array"):
        return
    _count(o, n, ptr, w, "minItems", "min_items_raised")
    _count(o, n, ptr, w, "maxItems", "max_items_lowered")
    if n.get("uniqueItems") is True and o.get("uniqueItems") is not True:
        w.add(_ptr(ptr, "uniqueItems"), "unique_items_added", f"{w.new} requires unique items, {w.old} not")
    if isinstance(o.get("items"), list) or isinstance(n.get("items"), list):
        _opaque(o, n, ptr, w, "items")  # tuple-form items (drafts before 2020-12)
        return
    old_prefix, new_prefix = _list(o, "prefixItems"), _list(n, "prefixItems")
    old_rest, new_rest = o.get("items", True), n.get("items", True)
    for i, sub in enumerate(new_prefix):
        _compare(old_prefix[i] if i < len(old_prefix) else old_rest, sub, _ptr(ptr, "prefixItems", i), w)
    if "items" in n:
        for sub in old_prefix[len(new_prefix) :]:
            _compare(sub, new_rest, _ptr(ptr, "items"), w)
        _compare(old_rest, new_rest, _ptr(ptr, "items"), w)


def _closed(s: Schema) -> bool:
    return s.get("additionalProperties") is False or s.get("unevaluatedProperties") is False


def _check_objects(o: Schema, n: Schema, ptr: str, w: _Walk) -> None:
    if not _both_allow(o, n, "object"):
        return
    _count(o, n, ptr, w, "minProperties", "min_properties_raised")
    _count(o, n, ptr, w, "maxProperties", "max_properties_lowered")
    old_props, new_props = _map(o, "properties"), _map(n, "properties")
    old_req = {r for r in _list(o, "required") if isinstance(r, str)}
    for name in dict.fromkeys(r for r in _list(n, "required") if isinstance(r, str)):
        prop = new_props.get(name)
        if name not in old_req and not (isinstance(prop, dict) and "default" in prop):
            msg = f"{w.new} requires property {name!r} without a default, {w.old} does not"
            w.add(_ptr(ptr, "required"), "required_added", msg)
    for name, sub in old_props.items():
        if name in new_props:
            _compare(sub, new_props[name], _ptr(ptr, "properties", name), w)
        else:
            _removed(("properties", name), sub, _governing(n, name), n, ptr, w)
    for name, sub in new_props.items():
        rule = None if name in old_props else _governing(o, name)
        if rule is not None:  # no rule means old was open for this name: adding it is compatible
            _compare(rule[1], sub, _ptr(ptr, "properties", name), w)
    old_pp, new_pp = _map(o, "patternProperties"), _map(n, "patternProperties")
    for pattern, sub in old_pp.items():
        if pattern in new_pp:
            _compare(sub, new_pp[pattern], _ptr(ptr, "patternProperties", pattern), w)
        else:
            _removed(("patternProperties", pattern), sub, _governing(n, None), n, ptr, w)
    for pattern, sub in new_pp.items():
        rule = None if pattern in old_pp else _governing(o, None)
        if rule is not None:  # a new pattern narrows old's additionalProperties schema, like a new property
            _compare(rule[1], sub, _ptr(ptr, "patternProperties", pattern), w)
    _check_closure(o, n, ptr, w)


def _governing(s: Schema, name: str | None) -> tuple[str, Any] | None:
    """The schema a name outside `properties` falls to: a matching pattern, else additionalProperties.

    None when that is "anything" (absent or true) or "nothing" (false). `name=None` skips patterns."""
    for pattern, sub in _map(s, "patternProperties").items():
        try:
            if name is not None and re.search(pattern, name):
                return _ptr("", "patternProperties", pattern), sub
        except re.error:
            continue
    ap = s.get("additionalProperties")
    return ("/additionalProperties", ap) if isinstance(ap, dict) else None


def _removed(
    where: tuple[str, str], old_sub: Any, rule: tuple[str, Any] | None, n: Schema, ptr: str, w: _Walk
) -> None:
    """A property (or pattern) gone from new: the rule that now governs it must accept what old did."""
    if rule is not None:
        _compare(old_sub, rule[1], ptr + rule[0], w)
    elif _closed(n) and old_sub is not False:
        what = "property" if where[0] == "properties" else "pattern property"
        msg = f"{w.new} drops {what} {where[1]!r} and forbids unknown properties; {w.old} allows it"
        w.add(_ptr(ptr, *where), "property_removed_closed", msg)


def _check_closure(o: Schema, n: Schema, ptr: str, w: _Walk) -> None:
    msg = f"{w.new} forbids additional properties, {w.old} allows them"
    if "additionalProperties" in n:
        new_ap = n["additionalProperties"]
        if new_ap is False:
            if not _closed(o):
                w.add(_ptr(ptr, "additionalProperties"), "additional_properties_closed", msg)
        elif not _closed(o):
            _compare(o.get("additionalProperties", True), new_ap, _ptr(ptr, "additionalProperties"), w)
    if n.get("unevaluatedProperties") is False:
        if not _closed(o) and n.get("additionalProperties") is not False:
            w.add(_ptr(ptr, "unevaluatedProperties"), "additional_properties_closed", msg)
    elif "unevaluatedProperties" in n:
        _opaque(o, n, ptr, w, "unevaluatedProperties")


def _opaque(o: Schema, n: Schema, ptr: str, w: _Walk, kw: str) -> None:
    if kw in n and (kw not in o or _canon(_strip({kw: o[kw]})) != _canon(_strip({kw: n[kw]}))):
        msg = f"{w.new} has a different {kw} than {w.old} (not compared structurally)"
        w.add(_ptr(ptr, kw), "subschema_changed", msg)


def _check_subschemas(o: Schema, n: Schema, ptr: str, w: _Walk) -> None:
    for kw in OPAQUE:
        _opaque(o, n, ptr, w, kw)
    for kw in ("$defs", "definitions"):
        old_defs, new_defs = _map(o, kw), _map(n, kw)
        for name in [d for d in old_defs if d in new_defs]:
            _compare(old_defs[name], new_defs[name], _ptr(ptr, kw, name), w)


_CHECKS: tuple[Callable[[Schema, Schema, str, _Walk], None], ...] = (
    _check_type,
    _check_values,
    _check_numbers,
    _check_strings,
    _check_arrays,
    _check_objects,
    _check_subschemas,
)
