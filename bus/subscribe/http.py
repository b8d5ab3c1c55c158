"""HTTP: GET /v1/subscribe/{namespace}/{tenant}/{name} as Server-Sent Events."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiokafka.structs import ConsumerRecord

from bus import metrics
from bus.errors import TooManySubscribers
from bus.http.access import Access, Principal
from bus.http.routes import Param, context, principal, route
from bus.kafka.context import BusContext
from bus.keys.metering import delivery_subjects, has_delivery_quota
from bus.keys.quotas import deliver_within_quota
from bus.subscribe.service import TopicReader, delivered, encode_cursor, parse_start, sse_event
from bus.topics.http import path_topic_id
from bus.topics.service import require_topic

log = logging.getLogger(__name__)
POLL_MS = 250  # how often an idle stream notices a client that went away


@route(
    "GET",
    "/v1/subscribe/{namespace}/{tenant}/{name}",
    summary="Stream a topic as SSE",
    tag="subscribe",
    access=Access.READ,
    event_stream=True,
    errors=(400, 404, 503),
    params=(
        Param("from", "earliest, latest (default) or a unix time in ms"),
        Param("Last-Event-ID", "Resume after this event (wins over from)", "header"),
    ),
)
async def subscribe(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    topic = await require_topic(ctx, path_topic_id(request))
    start = parse_start(request.query.get("from"), request.headers.get("Last-Event-ID"))
    if ctx.sse_clients >= ctx.settings.limits.max_sse_clients:
        raise TooManySubscribers("This worker serves its maximum of SSE clients", None)
    reader = await TopicReader.open(ctx.gateway, topic, start)
    ctx.sse_clients += 1
    metrics.SSE_CLIENTS.inc()
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b": subscribed at " + encode_cursor(reader.cursor).encode() + b"\n\n")
        await stream_records(ctx, request, response, reader, principal(request))
        return response
    finally:
        ctx.sse_clients -= 1
        metrics.SSE_CLIENTS.dec()
        await reader.close()


async def write_records(
    response: web.StreamResponse,
    reader: TopicReader,
    records: list[ConsumerRecord[bytes, bytes]],
    who: Principal,
) -> None:
    """One write per batch; under a delivery quota, one record at a time as the quota admits it."""
    quotas = delivery_subjects(who, reader.topic.namespace, reader.topic.tenant)
    metered = has_delivery_quota(quotas)
    chunks = []
    for record in records:
        reader.cursor[record.partition] = record.offset + 1
        data = delivered(reader.topic, record).model_dump_json()
        chunk = sse_event("record", data, encode_cursor(reader.cursor))
        if metered:
            await deliver_within_quota(quotas, 1, len(record.value or b""))
            await response.write(chunk)
        else:
            chunks.append(chunk)
    if chunks:
        await response.write(b"".join(chunks))


async def stream_records(
    ctx: BusContext, request: web.Request, response: web.StreamResponse, reader: TopicReader, who: Principal
) -> None:
    """Write records until the client goes away; a keep-alive comment while idle."""
    last_write = time.monotonic()
    keepalive = ctx.settings.timing.sse_keepalive
    try:
        while request.transport is not None and not request.transport.is_closing():
            records = await reader.next_batch(POLL_MS)
            if not records:
                if time.monotonic() - last_write >= keepalive:
                    await response.write(b": keep-alive\n\n")
                    last_write = time.monotonic()
                continue
            await write_records(response, reader, records, who)
            metrics.RECORDS_DELIVERED.labels("sse").inc(len(records))
            last_write = time.monotonic()
    except ConnectionResetError:
        log.debug("SSE client went away")
