"""Turns every failure into the one error shape, and counts every request.

Bad input never becomes a 500; an unexpected exception becomes a 500 with a generic
message and the stack trace goes to the log, never to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from bus import metrics, tracing
from bus.cluster.forwarding import PRINCIPAL, forwarded_identity
from bus.errors import (
    BadRequest,
    BusError,
    MethodNotAllowed,
    NotReady,
    QuotaExceeded,
    RequestTooLarge,
    RouteNotFound,
)
from bus.http.access import Access, Principal, require, require_admin
from bus.http.routes import AUDITOR, AUTHENTICATOR, CONTEXT, Route, check_path, route_for
from bus.logs import ACCESS, REQUEST_ID_HEADER, request_id_from, request_scope, set_tenant

__all__ = ["errors_and_metrics"]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: BusError) -> web.Response:
    metrics.ERRORS.labels(error.code).inc()
    response = web.json_response(error.to_body(), status=error.status)
    if isinstance(error, QuotaExceeded):
        response.headers["Retry-After"] = str(error.retry_after)
    elif error.status == 503:
        response.headers["Retry-After"] = "1"
    return response


def from_http_exception(exc: web.HTTPException) -> BusError:
    if exc.status == 404:
        return RouteNotFound("No such route", None)
    if exc.status == 405:
        return MethodNotAllowed("Method not allowed on this route", None)
    if exc.status == 413:
        return RequestTooLarge("The request body is over the limit", {"limit": exc.text})
    error = BadRequest(exc.reason, None)
    return error


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request: its id and tenant on every log line, authorization, one error shape,
    metrics, the audit hook, and (when asked for) an access log line."""
    request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    started = time.perf_counter()
    ctx = request.app[CONTEXT]
    with request_scope(request_id, request.match_info.get("tenant")):
        ctx.in_flight += 1  # a stopping worker waits for these (bus.assembly.drain_requests)
        try:
            response = await traced(request, handler, request_id)
        finally:
            ctx.in_flight -= 1
        if not response.prepared:  # a stream's headers went out already
            response.headers[REQUEST_ID_HEADER] = request_id
        if ctx.settings.access_log:
            ms = (time.perf_counter() - started) * 1000
            ACCESS.info(
                "%s %s %d %.1f ms",
                request.method,
                request.path,
                response.status,
                ms,
                extra={"method": request.method, "path": request.path, "status": response.status, "ms": ms},
            )
    return response


async def traced(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    """answer() in a server span, the child of the caller's traceparent if it sent one
    (a forwarding worker always does); just answer() when tracing is off."""
    if not tracing.enabled():
        return await answer(request, handler)
    name = f"{request.method} {route_template(request)}"
    parent = tracing.traced_headers(request.headers)
    attributes = {"http.request.method": request.method, "agentbus.request_id": request_id}
    with tracing.span(name, tracing.SpanKind.SERVER, parent, attributes) as span:
        response = await answer(request, handler)
        if span is not None:
            span.set_attribute("http.response.status_code", response.status)
        return response


def route_template(request: web.Request) -> str:
    route = request.match_info.route.resource
    return route.canonical if route is not None else "unmatched"


async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    response: web.StreamResponse
    error: BusError | None = None
    declared = route_for(request)  # once: both the authorization and the audit need it
    try:
        if declared is not None:
            check_path(request)
        authorize_route(request, declared)
        response = await handler(request)
    except BusError as exc:
        error = exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = from_http_exception(exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        error = BusError("Internal error; see the worker log", None)
    if error is not None:
        response = error_response(error)
    metrics.HTTP_REQUESTS.labels(request.method, route_template(request), str(response.status)).inc()
    if declared is not None:
        await request.app[AUDITOR](request, declared, response.status, error)
    return response


def authorize_route(request: web.Request, declared: Route | None) -> None:
    """Check what the route declares; an undeclared route (404/405) passes to its error.
    Until the worker is ready, every route but the public ones answers 503 not_ready: a
    key table that is still catching up must not answer 401 for a valid key, nor accept
    a revoked one."""
    if declared is None or declared.access is Access.PUBLIC:
        return
    if not request.app[CONTEXT].ready():
        raise NotReady("This worker is starting (its tables are catching up); retry", None)
    vouched = forwarded_identity(request)  # a worker of the fleet authenticated it already
    if vouched:
        who = Principal.from_identity(vouched)
    else:
        who = request.app[AUTHENTICATOR](request.headers.get("Authorization"))
    request[PRINCIPAL] = who
    set_tenant(who.tenant)
    if declared.access is Access.ADMIN:
        require_admin(who)
    action = declared.access.action
    m = request.match_info
    if action is not None and "namespace" in m and "tenant" in m:
        require(who, action, m["namespace"], m["tenant"], m.get("name"))
