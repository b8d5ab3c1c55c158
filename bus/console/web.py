"""The web console at /ui, and the few small read-only endpoints it needs.

- GET /ui and GET /ui/{path}: the console's static files (no key needed: they hold no
  data; every API call the page makes carries the key).
- GET /v1/whoami: the caller's key (role, tenant, grants), so the console hides what the
  key may not do. The server still enforces everything.
- GET /v1/workers: every worker of the fleet, whether it answers, the state partitions it
  owns and its publish/deliver counters (admin).
- GET /v1/watch?path=: a GET of this API re-read every interval_ms on the worker and sent
  as an SSE `snapshot` event whenever its answer changes, for what has no event stream of
  its own (lag, the fleet's counters, pending approvals). The inner request carries the
  caller's key, so it sees exactly what the key sees.
- GET /v1/agents/{namespace}/{tenant}/{agent_id}/inbox/lag: an inbox's depth (the lag
  report of the subscription behind it, which /v1/subscriptions does not reach).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import time
from pathlib import Path
from typing import Any

import aiohttp
import faust
from aiohttp import web
from pydantic import BaseModel

from bus import metrics
from bus.auth import Access
from bus.dispatcher import Dispatcher
from bus.errors import InvalidParameter, OwnerMoved
from bus.faust_app import app
from bus.http import inbox
from bus.http.routes import Param, context, json_response, principal, route
from bus.models.keys import Grant
from bus.models.subscriptions import LagReport
from bus.ownership import FORWARDER, is_forwarded, owners_topic, self_url, worker_urls

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
# No inline script or style, nothing from another origin: a value that slipped into the
# DOM as markup could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
WATCH_INTERVAL_MS = (1000, 60000)
WATCH_MAX_PATHS = 20
LOCAL_STATS = "/v1/workers?scope=local"


def static_file(relative: str) -> Path | None:
    """The file under STATIC that relative names, or None (missing, a directory, or outside)."""
    if "\\" in relative or "\x00" in relative:
        return None
    candidate = (STATIC / relative).resolve()
    if not candidate.is_relative_to(STATIC) or not candidate.is_file():
        return None
    return candidate


def file_response(request: web.Request, path: Path) -> web.StreamResponse:
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": "no-cache"}  # revalidate: cheap 304s
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return web.Response(body=body, headers={**headers, "Content-Type": content_type})


async def index(request: web.Request) -> web.StreamResponse:
    return file_response(request, STATIC / "index.html")


async def asset(request: web.Request) -> web.StreamResponse:
    found = static_file(request.match_info["path"])
    if found is None:
        return web.json_response(
            {"error": {"code": "route_not_found", "message": "No such file", "details": None}}, status=404
        )
    return file_response(request, found)


async def to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")


def install(faust_app: faust.App) -> None:
    """Serve the console at /ui on this worker's web server (call before the worker starts)."""
    router = faust_app.web.web_app.router
    router.add_get("/ui", to_index)
    router.add_get("/ui/", index)
    router.add_get("/ui/{path:.+}", asset)


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
        records_published=counter(metrics.RECORDS_PUBLISHED),
        records_delivered=counter(metrics.RECORDS_DELIVERED),
        sse_clients=counter(metrics.SSE_CLIENTS),
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
    found: list[WorkerStats] = []
    for url in worker_urls():
        if url == self_url():
            stats = await local_stats(request)
        else:
            try:
                auth = request.headers.get("Authorization", "")
                status, body = await FORWARDER.call("", "GET", LOCAL_STATS, auth, None, base=url)
            except OwnerMoved:
                status, body = 0, None
            stats = WorkerStats.model_validate(body) if status == 200 else WorkerStats(url=url, up=False)
        stats.partitions = sorted(owned.get(url, ()))
        found.append(stats)
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
    try:
        interval = int(request.query.get("interval_ms", "2000"))
    except ValueError:
        raise InvalidParameter("interval_ms is a number of milliseconds", None) from None
    if not WATCH_INTERVAL_MS[0] <= interval <= WATCH_INTERVAL_MS[1]:
        raise InvalidParameter("interval_ms is 1000 to 60000", {"interval_ms": interval})
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    auth = request.headers.get("Authorization", "")
    last: bytes | None = None
    while True:
        results = await asyncio.gather(*(read_json(path, auth) for path in paths))
        data = json.dumps({"results": results}, separators=(",", ":")).encode()
        try:
            event = b"event: snapshot\ndata: " + data + b"\n\n" if data != last else b": same\n\n"
            await response.write(event)
        except (ConnectionResetError, RuntimeError):
            return response
        last = data
        await asyncio.sleep(interval / 1000)


@route(
    "GET",
    "/v1/agents/{namespace}/{tenant}/{agent_id}/inbox/lag",
    summary="The agent's inbox depth: lag, unacked, in flight and the oldest unacked age",
    tag="agents",
    access=Access.READ,
    response=LagReport,
    errors=(404, 503),
)
async def inbox_lag(request: web.Request) -> web.StreamResponse:
    async def call(d: Dispatcher) -> web.StreamResponse:
        return json_response((await d.lag()).model_copy(update={"owner": self_url()}))

    return await inbox.on_owner(request, call)


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
