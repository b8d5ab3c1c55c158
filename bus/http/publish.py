"""HTTP: /v1/publish and /v1/publish/batch."""

from __future__ import annotations

from aiohttp import web

from bus import publish
from bus.http.routes import context, json_response, read_model, route
from bus.models.publish import Batch, BatchResult, Envelope, PublishResult

PUBLISH_ERRORS = (400, 404, 413, 422, 503)


@route(
    "POST",
    "/v1/publish",
    summary="Publish one record; answers after acks=all",
    tag="publish",
    body=Envelope,
    response=PublishResult,
    errors=PUBLISH_ERRORS,
)
async def publish_one(request: web.Request) -> web.StreamResponse:
    envelope = await read_model(request, Envelope)
    [result] = await publish.publish(context(request), [envelope], "single")
    return json_response(result)


@route(
    "POST",
    "/v1/publish/batch",
    summary="Publish many records in order; all or none pass the checks",
    tag="publish",
    body=Batch,
    response=BatchResult,
    errors=PUBLISH_ERRORS,
)
async def publish_batch(request: web.Request) -> web.StreamResponse:
    batch = await read_model(request, Batch)
    results = await publish.publish(context(request), batch.records, "batch")
    return json_response(BatchResult(results=results))
