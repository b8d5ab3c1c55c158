"""Puts the route table on a worker's web server: one aiohttp route per endpoint, behind the
middleware, with the worker's context, authenticator and audit hook (bus.assembly calls
install once)."""

from __future__ import annotations

from collections import defaultdict
from functools import partial

import faust

from bus.http.connections import GuardedRunner
from bus.http.middleware import errors_and_metrics
from bus.http.routes import AUDITOR, AUTHENTICATOR, CONTEXT, ROUTES, Auditor, Authenticator, Route
from bus.kafka.context import BusContext
from bus.kafka.faust_patches import use_web_runner

__all__ = ["install"]


def install(app: faust.App, ctx: BusContext, authenticate: Authenticator, audit: Auditor) -> None:
    """Register every declared route on this worker's web server (Faust's aiohttp
    application), behind the middleware (errors, metrics, authentication and the audit hook).

    Handlers go on aiohttp's router directly, not through Faust views: a view added a
    wrapper, a view dispatch and Faust's web sensors to every request (~6% of a single
    publish's worker CPU, py-spy), and nothing reads those sensors. The router sees the
    same paths and methods in the same order (a view registered one route per method).

    The server's connections are guarded once for every route (bus/http/connections.py):
    a request's head must arrive within AGENTBUS_HEADER_TIMEOUT seconds."""
    # access_log=None as Faust's own runner: the middleware logs requests (AGENTBUS_ACCESS_LOG).
    runner = partial(GuardedRunner, access_log=None, header_timeout=ctx.settings.timing.header_timeout)
    use_web_runner(app, runner)
    web_app = app.web.web_app
    web_app[CONTEXT] = ctx
    web_app[AUTHENTICATOR] = authenticate
    web_app[AUDITOR] = audit
    web_app.middlewares.append(errors_and_metrics)
    by_path: dict[str, list[Route]] = defaultdict(list)  # paths in their first declaration's order
    for r in ROUTES:
        by_path[r.path].append(r)
    for routes in by_path.values():
        for r in routes:
            web_app.router.add_route(r.method, r.path, r.handler)
