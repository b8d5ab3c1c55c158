"""Puts the route table on a worker's web server: one Faust view per path, behind the
middleware, with the worker's context, authenticator and audit hook (bus.assembly calls
install once)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import faust
from aiohttp import web

from bus.http.middleware import errors_and_metrics
from bus.http.routes import (
    AUDITOR,
    AUTHENTICATOR,
    CONTEXT,
    ROUTES,
    Auditor,
    Authenticator,
    Handler,
)
from bus.kafka.context import BusContext

__all__ = ["install"]


def install(app: faust.App, ctx: BusContext, authenticate: Authenticator, audit: Auditor) -> None:
    """Register every declared route as a Faust view on this worker's web server, behind
    the middleware (errors, metrics, authentication and the audit hook)."""
    web_app = app.web.web_app
    web_app[CONTEXT] = ctx
    web_app[AUTHENTICATOR] = authenticate
    web_app[AUDITOR] = audit
    web_app.middlewares.append(errors_and_metrics)
    by_path: dict[str, dict[str, Handler]] = defaultdict(dict)
    for r in ROUTES:
        by_path[r.path][r.method.lower()] = r.handler
    for path, handlers in by_path.items():
        app.page(path, name=view_name(path))(view_for(handlers))


def view_name(path: str) -> str:
    return "route" + path.replace("/", "_").replace("{", "").replace("}", "")


def view_for(handlers: dict[str, Handler]) -> type[faust.web.View]:
    methods: dict[str, Any] = {}
    for method, handler in handlers.items():

        async def call(_view: Any, request: web.Request, _h: Handler = handler, **_: Any) -> Any:
            return await _h(request)

        methods[method] = call
    return type("BusView", (faust.web.View,), methods)
