"""HTTP: /healthz, /metrics and /openapi.json."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from bus.http.access import Access
from bus.http.openapi import build_openapi
from bus.http.routes import context, json_response, route

__all__: list[str] = []  # nothing here is for other modules: routes register themselves


class Health(BaseModel):
    status: str
    broker: bool
    ready: bool


def package_version() -> str:
    try:
        return version("agentbus")
    except PackageNotFoundError:
        return "0.0.0"


@route(
    "GET",
    "/healthz",
    summary="Broker reachable and worker ready (200) or not (503)",
    tag="system",
    access=Access.PUBLIC,
    response=Health,
    errors=(503,),
)
async def healthz(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    broker = ctx.gateway.started and await ctx.gateway.ping()
    ready = ctx.ready()
    ok = broker and ready
    return json_response(
        Health(status="ok" if ok else "unavailable", broker=broker, ready=ready), status=200 if ok else 503
    )


@route("GET", "/metrics", summary="Prometheus metrics of this worker", tag="system", access=Access.ADMIN)
async def metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@route("GET", "/openapi.json", summary="This document", tag="system", access=Access.AUTHENTICATED)
async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(build_openapi(package_version()))
