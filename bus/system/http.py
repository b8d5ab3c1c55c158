"""HTTP: the worker itself. /healthz, /metrics, /openapi.json; and for the console (and
any operator): /v1/whoami (the caller's key), /v1/workers (every worker, what it owns, its
counters) and /v1/watch (GETs of this API re-read on the worker and pushed as SSE when
their answers change, for what has no event stream of its own: lag, counters, approvals)."""

from __future__ import annotations

import asyncio
import json
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import aiohttp
from agentbus_client.models.system import Health
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from bus import metrics as bus_metrics
from bus.cluster.forwarding import FORWARDER, ask_each, is_forwarded
from bus.cluster.ownership import owners_topic, self_url
from bus.errors import InvalidParameter
from bus.http.access import Access, Grant
from bus.http.event_stream import EventStream, event
from bus.http.openapi import build_openapi
from bus.http.params import whole
from bus.http.routes import Param, context, json_response, principal, route
from bus.kafka.faust_app import app

__all__: list[str] = []  # nothing here is for other modules: routes register themselves


def package_version() -> str:
    try:
        return version("agentbus")
    except PackageNotFoundError:
        return "0.0.0"


@route(
    "GET",
    "/livez",
    summary="The worker process is up and serving HTTP (200); restart it if this fails",
    tag="system",
    access=Access.PUBLIC,
    response=Health,
)
async def livez(request: web.Request) -> web.StreamResponse:
    return await health(request, require_ready=False)


@route(
    "GET",
    "/readyz",
    summary="The worker can answer correctly (200) or not yet (503): send it traffic only when 200",
    tag="system",
    access=Access.PUBLIC,
    response=Health,
    answers=((503, Health),),
)
async def readyz(request: web.Request) -> web.StreamResponse:
    return await health(request, require_ready=True)


@route(
    "GET",
    "/healthz",
    summary="The same as /readyz (kept for existing health checks)",
    tag="system",
    access=Access.PUBLIC,
    response=Health,
    answers=((503, Health),),
)
async def healthz(request: web.Request) -> web.StreamResponse:
    return await health(request, require_ready=True)


async def health(request: web.Request, require_ready: bool) -> web.StreamResponse:
    """Readiness is the worker's own state (started, tables recovered and caught up), not
    whether every broker answers: with one broker of three down the fleet still serves,
    and a load balancer must not take every worker out. `broker` says whether the
    cluster answered the worker's last look (at most once a second)."""
    ctx = context(request)
    broker = ctx.gateway.started and await ctx.gateway.ping()
    ready = ctx.ready()
    ok = ready or not require_ready
    status = "ok" if ready else ("starting" if not require_ready else "unavailable")
    return json_response(Health(status=status, broker=broker, ready=ready), status=200 if ok else 503)


@route("GET", "/metrics", summary="Prometheus metrics of this worker", tag="system", access=Access.ADMIN)
async def metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@route("GET", "/openapi.json", summary="This document", tag="system", access=Access.AUTHENTICATED)
async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(build_openapi(package_version()))


WATCH_INTERVAL_MS = (1000, 60000)
WATCH_MAX_PATHS = 20


class WhoAmI(BaseModel):
    key_id: str
    admin: bool
    namespace: str | None
    tenant: str | None
    grants: list[Grant]


@route(
    "GET",
    "/v1/whoami",
    summary="The caller's key: role, tenant and grants",
    tag="system",
    access=Access.AUTHENTICATED,
    response=WhoAmI,
)
async def whoami(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    return json_response(WhoAmI(**{**who.__dict__, "grants": list(who.grants)}))


class WorkerStats(BaseModel):
    url: str
    up: bool
    ready: bool = False
    broker: bool = False
    partitions: list[int] = []
    records_published: float = 0
    records_delivered: float = 0
    sse_clients: float = 0
    at: int = 0


class Fleet(BaseModel):
    answered_by: str
    state_partitions: int
    unowned: list[int]
    workers: list[WorkerStats]


def counter(metric: Any) -> float:
    """The sum of a metric's samples (every label), without the _created ones."""
    return float(
        sum(s.value for family in metric.collect() for s in family.samples if not s.name.endswith("_created"))
    )


async def local_stats(request: web.Request) -> WorkerStats:
    ctx = context(request)
    return WorkerStats(
        url=self_url(),
        up=True,
        ready=ctx.ready(),
        broker=ctx.gateway.started and await ctx.gateway.ping(),
        records_published=counter(bus_metrics.RECORDS_PUBLISHED),
        records_delivered=counter(bus_metrics.RECORDS_DELIVERED),
        sse_clients=counter(bus_metrics.SSE_CLIENTS),
        at=int(time.time() * 1000),
    )


@route(
    "GET",
    "/v1/workers",
    summary="The fleet's workers: up, owned state partitions, publish and deliver counters",
    tag="system",
    access=Access.ADMIN,
    response=Fleet,
)
async def workers(request: web.Request) -> web.StreamResponse:
    if request.query.get("scope") == "local" and is_forwarded(request):
        return json_response(await local_stats(request))
    owned: dict[str, set[int]] = {}
    topic = owners_topic.get_topic_name()
    for url, topics in app.router.external_topics_metadata().items():
        owned[str(url).rstrip("/")] = set(topics.get(topic, ()))
    found = [await local_stats(request)]
    for url, status, body in await ask_each(request):  # a worker that does not answer is down
        found.append(WorkerStats.model_validate(body) if status == 200 else WorkerStats(url=url, up=False))
    found.sort(key=lambda w: w.url)
    for stats in found:
        stats.partitions = sorted(owned.get(stats.url, ()))
    partitions = context(request).settings.state_partitions
    held = {p for w in found for p in w.partitions}
    return json_response(
        Fleet(
            answered_by=self_url(),
            state_partitions=partitions,
            unowned=[p for p in range(partitions) if p not in held],
            workers=found,
        )
    )


@route(
    "GET",
    "/v1/watch",
    summary="GETs of this API as SSE: a snapshot event now and whenever one of the answers changes",
    tag="system",
    access=Access.AUTHENTICATED,
    event_stream=True,
    params=(
        Param("path", "a GET path of this API with its query, e.g. /v1/agents; repeat for more (at most 20)"),
        Param("interval_ms", "how often to read them again, 1000 to 60000 (default 2000)"),
    ),
    errors=(400,),
)
async def watch(request: web.Request) -> web.StreamResponse:
    paths = request.query.getall("path", [])
    if not 1 <= len(paths) <= WATCH_MAX_PATHS:
        raise InvalidParameter(f"give 1 to {WATCH_MAX_PATHS} path parameters", {"paths": len(paths)})
    for path in paths:
        if not watchable(path):
            raise InvalidParameter("path is /healthz or a GET path under /v1/", {"path": path[:200]})
    interval = whole(request, "interval_ms", 2000, minimum=WATCH_INTERVAL_MS[0], maximum=WATCH_INTERVAL_MS[1])
    auth = request.headers.get("Authorization", "")
    async with EventStream(request) as events:
        await events.start(f"watching {len(paths)} path(s)")
        last: str | None = None
        while events.connected:
            results = await asyncio.gather(*(read_json(path, auth) for path in paths))
            data = json.dumps({"results": results}, separators=(",", ":"))
            if data != last:
                await events.send([event("snapshot", data)])
                last = data
            else:
                await events.keep_alive()
            await asyncio.sleep(interval / 1000)
    return events.response


def watchable(path: str) -> bool:
    under_api = path.startswith("/v1/") and not path.startswith("/v1/watch")
    return (under_api or path == "/healthz") and not any(c in path for c in "\r\n#")


async def read_json(path: str, auth: str) -> dict[str, Any]:
    """GET path on this worker as the caller (the key goes along): {path, status, body}."""
    try:
        async with FORWARDER.session.get(
            self_url() + path, headers={"Authorization": auth}, timeout=aiohttp.ClientTimeout(total=30)
        ) as answer:
            status, body = answer.status, await answer.read()
    except (aiohttp.ClientError, TimeoutError):
        status, body = 503, b'{"error": {"code": "unavailable", "message": "no answer", "details": null}}'
    return {"path": path, "status": status, "body": parsed(body)}


def parsed(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return body.decode(errors="replace")
