"""HTTP: /v1/publish and /v1/publish/batch."""

from __future__ import annotations

from aiohttp import web
from pydantic_core import to_json

from bus.cluster.forwarding import at_owner, is_forwarded
from bus.http.access import Access, Action, require
from bus.http.routes import (
    AUDIT_TARGET,
    context,
    json_bytes_response,
    json_response,
    principal,
    read_model,
    route,
)
from bus.keys.metering import admit_publish, publish_meter
from bus.publish import dedup
from bus.publish import service as publish
from bus.publish.models import Batch, BatchResult, Envelope, PublishResult
from tables.publish_ids import publish_ids

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

PUBLISH_ERRORS = (400, 403, 404, 413, 422, 503)


def require_write(
    request: web.Request, envelopes: list[Envelope], payloads: list[bytes], meter_it: bool = True
) -> None:
    """Authorize every target, then (meter_it) meter the request against the fleet-wide quotas."""
    who = principal(request)
    targets = {e.topic for e in envelopes}
    tenants: set[tuple[str, str]] = set()
    for ref in sorted(targets):
        namespace, tenant, name = ref.split("/")
        request[AUDIT_TARGET] = (namespace, tenant)  # a denial is audited against this tenant
        require(who, Action.WRITE, namespace, tenant, name)
        tenants.add((namespace, tenant))
    meter = publish_meter(who, tenants) if meter_it else None
    if meter is None:
        return
    sizes: dict[tuple[str, str], tuple[int, int]] = {}
    for e, payload in zip(envelopes, payloads, strict=True):
        namespace, tenant, _ = e.topic.split("/")
        records, size = sizes.get((namespace, tenant), (0, 0))
        sizes[(namespace, tenant)] = (records + 1, size + len(payload))
    admit_publish(meter, sizes)


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
    ctx = context(request)
    key = dedup.dedup_key(ctx.settings, envelope)

    async def here() -> web.StreamResponse:
        payloads = [publish.encode_payload(envelope)]  # once: metering and the record share it
        require_write(request, [envelope], payloads)
        who = principal(request).key_id
        if key is None:
            [result] = await publish.publish(ctx, [envelope], "single", who, payloads)
            return json_bytes_response(to_json(result))
        async with publish_ids.deciding(ctx, key):  # a retry of the same id waits for the first
            earlier = dedup.first_receipt(ctx.settings, key)
            if earlier is not None:
                return json_response(earlier)  # written before: nothing is written again
            produce = dedup.producing_once(key, envelope)
            [result] = await publish.publish(ctx, [envelope], "single", who, payloads, produce)
        return json_bytes_response(to_json(result))

    if key is None:
        return await here()
    return await at_owner(request, key, publish_ids.topic, here)  # the id's owner decides


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
    ctx = context(request)
    payloads = [publish.encode_payload(e) for e in batch.records]  # once: metering and the records
    # A batch another worker handed over holds records whose ids this worker owns
    # (dedup.producing_each_once): that worker checked and metered the whole batch.
    handed_over = is_forwarded(request)
    require_write(request, batch.records, payloads, meter_it=not handed_over)
    who = principal(request).key_id
    produce = None
    if any(dedup.dedup_key(ctx.settings, e) is not None for e in batch.records):
        auth = None if handed_over else request.headers.get("Authorization", "")
        produce = dedup.producing_each_once(ctx, batch.records, auth)
    results = await publish.publish(ctx, batch.records, "batch", who, payloads, produce)
    return json_bytes_response(to_json({"results": results}))  # a BatchResult
