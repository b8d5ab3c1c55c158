"""The route table: every endpoint is declared here once, with its models.

The OpenAPI document and the tests are generated from ROUTES, so a route cannot
exist without being documented. install() turns the table into Faust web views.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from bus.cluster.forwarding import PRINCIPAL
from bus.errors import BusError, InvalidJson, InvalidParameter, Unprocessable, UnsupportedMediaType
from bus.http.access import Access, Principal
from bus.kafka.context import BusContext
from bus.wire import PATH_PARAMETERS

__all__ = [
    "AUDITOR",
    "AUDIT_TARGET",
    "AUTHENTICATOR",
    "CONTEXT",
    "ROUTES",
    "Auditor",
    "Authenticator",
    "Handler",
    "Param",
    "Route",
    "check_path",
    "context",
    "field_errors",
    "json_bytes_response",
    "json_response",
    "principal",
    "read_model",
    "refuse_non_json_numbers",
    "route",
    "route_for",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
CONTEXT: web.AppKey[BusContext] = web.AppKey("agentbus.context", BusContext)
Authenticator = Callable[[str | None], Principal]  # the Authorization header -> who (or raise)
Auditor = Callable[[web.Request, "Route", int, BusError | None], Awaitable[None]]  # after each request
AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("agentbus.authenticator")
AUDITOR: web.AppKey[Auditor] = web.AppKey("agentbus.auditor")


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    location: str = "query"  # or "header"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    access: Access  # declared by every route: see bus.keys.auth
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    event_stream: bool = False  # answers text/event-stream instead of JSON
    websocket: bool = False  # upgrades to a WebSocket
    params: tuple[Param, ...] = field(default_factory=tuple)
    errors: tuple[int, ...] = ()
    # non-2xx answers with a body of their own instead of an ErrorBody (/readyz's 503: a Health)
    answers: tuple[tuple[int, type[BaseModel]], ...] = ()
    audited: bool = True  # False on the data plane (heartbeats, agent messages, inboxes): not admin actions


ROUTES: list[Route] = []


def route(
    method: str, path: str, *, summary: str, tag: str, access: Access, **options: Any
) -> Callable[[Handler], Handler]:
    """Declare an endpoint and who may call it; the handler takes the aiohttp request."""

    if options.get("event_stream"):  # every event stream holds one of its key's slots
        options["errors"] = tuple(sorted({*options.get("errors", ()), 429}))

    def register(handler: Handler) -> Handler:
        declared = Route(method.upper(), path, handler, summary, tag, access, **options)
        ROUTES.append(declared)
        _BY_TEMPLATE[(declared.method, declared.path)] = declared
        return handler

    return register


def route_for(request: web.Request) -> Route | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return _BY_TEMPLATE.get((request.method, resource.canonical))


def principal(request: web.Request) -> Principal:
    """The authenticated caller (the middleware put it there before the handler ran)."""
    found = request.get(PRINCIPAL)
    assert isinstance(found, Principal), "route without authentication"
    return found


AUDIT_TARGET = "agentbus.audit_target"  # (namespace, tenant) when the target is in the body
_BY_TEMPLATE: dict[tuple[str, str], Route] = {}


def context(request: web.Request) -> BusContext:
    return request.app[CONTEXT]


async def read_model(request: web.Request, model: type[M]) -> M:
    """Parse the JSON body into model; errors name the failing field by its path."""
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise UnsupportedMediaType(
            "Send the body as application/json", {"content_type": request.content_type}
        )
    raw = await request.read()
    refuse_non_json_numbers(raw)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise InvalidJson("The body is not valid JSON", {"reason": str(exc.errors()[0]["msg"])}) from None
        raise Unprocessable("The body does not match the expected shape", field_errors(exc)) from None


# A number that may not fit a double has a three-digit exponent or 300 digits in a row
# (the regular expression [0-9][eE]+?[0-9]{3}|[0-9]{300}). Looked for in the body with
# every digit mapped to '0', 'E' to 'e' and anything else but '+' to a space, then three
# substring searches: ~15x cheaper than the expression on a body of 100 records (1.5 ms).
_NUMBER_SHAPES = (
    bytes(
        ord("0") if chr(b).isdigit() else ord("e") if chr(b) in "eE" else b if chr(b) == "+" else ord(" ")
        for b in range(128)
    )
    + b" " * 128
)
_HUGE_SHAPES = (b"0e000", b"0e+000", b"0" * 300)


def _may_hold_huge_number(raw: bytes) -> bool:
    shape = raw.translate(_NUMBER_SHAPES)
    return any(s in shape for s in _HUGE_SHAPES)


def refuse_non_json_numbers(raw: bytes) -> None:
    """NaN, Infinity and numbers beyond a double are not JSON: refused (400 invalid_json)
    rather than written to Kafka as invalid JSON or silently turned into null. A body
    without those spellings or a huge number's shape is not parsed here: a parse costs as
    much as the model's own."""
    if b"NaN" not in raw and b"Infinity" not in raw and not _may_hold_huge_number(raw):
        return
    try:
        parsed = from_json(raw, allow_inf_nan=False) if raw else None
    except ValueError as exc:
        if b"NaN" in raw or b"Infinity" in raw:
            raise InvalidJson("NaN and Infinity are not JSON numbers", {"reason": str(exc)}) from None
        return  # not JSON at all: the model's own parse says so, with its position
    if _may_hold_huge_number(raw) and _has_infinity(parsed):
        raise InvalidJson("A number in the body does not fit a double (a JSON number's range)", None)


def _has_infinity(value: object) -> bool:
    if isinstance(value, float):
        return math.isinf(value)
    if isinstance(value, dict):
        return any(_has_infinity(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_infinity(v) for v in value)
    return False


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"path": "/".join(str(p) for p in e["loc"]), "type": e["type"], "message": e["msg"]}
        for e in exc.errors(include_url=False)
    ]


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=model.model_dump_json(), status=status, content_type="application/json")


def json_bytes_response(body: bytes, status: int = 200) -> web.Response:
    """A JSON body rendered already (a hot path that skips building its response model)."""
    return web.Response(body=body, status=status, content_type="application/json")


_PATH_RES = {name: re.compile(pattern) for name, pattern in PATH_PARAMETERS.items()}


def check_path(request: web.Request) -> None:
    """Refuse a path whose parameters do not match their patterns (bus.wire.PATH_PARAMETERS),
    before anything routes it on: a control character or a stray byte never reaches a
    lookup, a forward or a log as a key."""
    for name, value in request.match_info.items():
        pattern = _PATH_RES.get(name)
        if pattern is not None and not pattern.match(value):
            raise InvalidParameter(
                f"{name} is not a valid {name} (pattern {PATH_PARAMETERS[name]})", {name: repr(value[:200])}
            )
