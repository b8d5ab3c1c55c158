"""HTTP: GET /v1/subscribe/{namespace}/{tenant}/{name} as Server-Sent Events."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from aiohttp import web
from aiokafka.structs import ConsumerRecord

from bus import metrics
from bus.http.access import Access, Principal
from bus.http.event_stream import EventStream, json_event
from bus.http.routes import Param, context, principal, route
from bus.keys.metering import delivery_subjects, has_delivery_quota
from bus.keys.quotas import deliver_within_quota
from bus.subscribe.service import TopicReader, delivered_fields, delivered_json, encode_cursor, parse_start
from bus.topics.http import path_topic_id
from bus.topics.service import require_topic

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

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
    async with EventStream(request) as events:
        reader = await TopicReader.open(ctx.gateway, topic, start)
        try:
            await events.start("subscribed at " + encode_cursor(reader.cursor))
            await stream_records(events, reader, principal(request))
        finally:
            await reader.close()
    return events.response


async def write_records(
    events: EventStream, reader: TopicReader, records: list[ConsumerRecord[bytes, bytes]], who: Principal
) -> None:
    """Events encoded as they are written (EventStream writes at most WRITE_BYTES at a time);
    under a delivery quota, one record at a time as the quota admits it."""
    quotas = delivery_subjects(who, reader.topic.namespace, reader.topic.tenant)
    if not has_delivery_quota(quotas):
        await events.send(record_events(reader, records))
        return
    for one, record in zip(record_events(reader, records), records, strict=True):
        await deliver_within_quota(quotas, 1, len(record.value or b""))
        await events.send([one])


def record_events(reader: TopicReader, records: list[ConsumerRecord[bytes, bytes]]) -> Iterator[bytes]:
    """Each record's event, its id the cursor past it (the cursor moves as each is made)."""
    for record in records:
        reader.cursor[record.partition] = record.offset + 1
        data = delivered_json(delivered_fields(reader.topic, record))
        yield json_event("record", data, encode_cursor(reader.cursor))


async def stream_records(events: EventStream, reader: TopicReader, who: Principal) -> None:
    """Write records until the client goes away; a keep-alive comment while idle."""
    while events.connected:
        records = await reader.next_batch(POLL_MS)
        if not records:
            await events.keep_alive()
            continue
        await write_records(events, reader, records, who)
        metrics.RECORDS_DELIVERED.labels("sse").inc(len(records))
        metrics.count_delivered(reader.topic.topic_id, "sse", len(records))
