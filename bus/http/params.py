"""Query parameters and request headers, parsed one way for every route: whole numbers in
ASCII digits within their range, choices from a fixed set. Anything else is a 400
invalid_parameter naming the parameter, never a 500."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from bus.errors import InvalidParameter
from bus.wire import INT64_MAX, parse_whole

__all__ = ["choice", "optional_whole", "whole", "whole_text"]


def whole(
    request: web.Request, name: str, default: int, *, minimum: int = 0, maximum: int = INT64_MAX
) -> int:
    """The query parameter name as a whole number from minimum to maximum (default when absent)."""
    found = optional_whole(request, name, minimum=minimum, maximum=maximum)
    return default if found is None else found


def optional_whole(request: web.Request, name: str, minimum: int = 0, maximum: int = INT64_MAX) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    return whole_text(raw, name, minimum=minimum, maximum=maximum)


def whole_text(raw: str, name: str, *, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """raw (a parameter's or a header's text) as a whole number from minimum to maximum."""
    value = parse_whole(raw, maximum)
    if value is None or value < minimum:
        raise InvalidParameter(f"{name} is a whole number from {minimum} to {maximum}", {name: raw[:50]})
    return value


def choice(request: web.Request, name: str, choices: Sequence[str], default: str | None) -> str | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw not in choices:
        raise InvalidParameter(f"{name} is one of {', '.join(choices)}", {name: raw[:50]})
    return raw
