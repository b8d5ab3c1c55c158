"""HTTP: /v1/publish and /v1/publish/batch."""

from __future__ import annotations

from aiohttp import web

from bus import publish
from bus.auth import Access, require
from bus.http.routes import context, json_response, principal, read_model, route
from bus.models.keys import Action
from bus.models.publish import Batch, BatchResult, Envelope, PublishResult

PUBLISH_ERRORS = (400, 404, 413, 422, 503)


def require_write(request: web.Request, envelopes: list[Envelope]) -> None:
    who = principal(request)
    for ref in {e.topic for e in envelopes}:
        namespace, tenant, name = ref.split("/")
        require(who, Action.WRITE, namespace, tenant, name)


@route(
    "POST",
    "/v1/publish",
    summary="Publish one record; answers after acks=all",
    tag="publish",
    access=Access.WRITE,
    body=Envelope,
    response=PublishResult,
    errors=PUBLISH_ERRORS,
)
async def publish_one(request: web.Request) -> web.StreamResponse:
    envelope = await read_model(request, Envelope)
    require_write(request, [envelope])
    [result] = await publish.publish(context(request), [envelope], "single")
    return json_response(result)


@route(
    "POST",
    "/v1/publish/batch",
    summary="Publish many records in order; all or none pass the checks",
    tag="publish",
    access=Access.WRITE,
    body=Batch,
    response=BatchResult,
    errors=PUBLISH_ERRORS,
)
async def publish_batch(request: web.Request) -> web.StreamResponse:
    batch = await read_model(request, Batch)
    require_write(request, batch.records)
    results = await publish.publish(context(request), batch.records, "batch")
    return json_response(BatchResult(results=results))
