"""HTTP: token streams. Writing and cancelling run on the conversation's owner; a reader is
served by the owner too (relayed when it connected elsewhere)."""

from __future__ import annotations

import json

from agentbus_client.models.conversations import conversation_key
from aiohttp import web

from bus.cluster.forwarding import at_owner
from bus.conversations.http import path_key
from bus.conversations.service import view_of
from bus.http.access import Access
from bus.http.event_stream import EventStream, event
from bus.http.params import whole
from bus.http.routes import Param, context, json_response, read_model, route
from bus.streams import service as streams
from bus.streams.models import CancelStream, ChunksReceipt, ChunksSpec, StreamEnd, StreamEndSpec
from bus.streams.reader import follow
from tables.conversations import conversations

__all__ = ["STREAM", "stream_conversation"]

CONVERSATION = "/v1/conversations/{namespace}/{tenant}/{id}"
STREAM = "/v1/streams/{namespace}/{tenant}/{conversation_id}/{stream_id}"
MAX_GAP_TIMEOUT_MS = 60_000


@route(
    "POST",
    CONVERSATION + "/stream-chunks",
    audited=False,
    summary="Write chunks of a token stream (one chunk, or several in order of chunk_seq or not)",
    tag="streams",
    access=Access.WRITE,
    body=ChunksSpec,
    response=ChunksReceipt,
    errors=(403, 404, 409, 422, 503),
)
async def write_chunks(request: web.Request) -> web.StreamResponse:
    key, spec = path_key(request), await read_model(request, ChunksSpec)

    async def call() -> web.StreamResponse:
        return json_response(await streams.add_chunks(context(request), key, spec))

    return await at_owner(request, key, conversations.topic, call)


@route(
    "POST",
    CONVERSATION + "/stream-end",
    audited=False,
    summary="End a token stream: complete, error or cancelled (an envelope with a sequence number)",
    tag="streams",
    access=Access.WRITE,
    body=StreamEndSpec,
    response=StreamEnd,
    errors=(403, 404, 409, 422, 503, 504),
)
async def end(request: web.Request) -> web.StreamResponse:
    key, spec = path_key(request), await read_model(request, StreamEndSpec)

    async def call() -> web.StreamResponse:
        return json_response(await streams.end_stream(context(request), key, spec))

    return await at_owner(request, key, conversations.topic, call)


def stream_conversation(request: web.Request) -> str:
    m = request.match_info
    return conversation_key(m["namespace"], m["tenant"], m["conversation_id"])


@route(
    "POST",
    STREAM + "/cancel",
    summary="Cancel a stream as its consumer: the producer's next write is refused with stream_cancelled",
    tag="streams",
    access=Access.WRITE,
    body=CancelStream,
    response=StreamEnd,
    errors=(404, 409, 422, 503, 504),
)
async def cancel(request: web.Request) -> web.StreamResponse:
    key, body = stream_conversation(request), await read_model(request, CancelStream)
    spec = StreamEndSpec(stream_id=request.match_info["stream_id"], status="cancelled", error=body.reason)

    async def call() -> web.StreamResponse:
        return json_response(await streams.end_stream(context(request), key, spec, by="consumer"))

    return await at_owner(request, key, conversations.topic, call)


@route(
    "GET",
    STREAM,
    summary="Read a stream as SSE in chunk_seq order, from its first chunk, until its end",
    tag="streams",
    access=Access.READ,
    event_stream=True,
    params=(
        Param("from_chunk", "Start at this chunk_seq (default 0)"),
        Param(
            "gap_timeout_ms",
            f"Report a missing chunk after this long (default 2000, at most {MAX_GAP_TIMEOUT_MS})",
        ),
    ),
    errors=(400, 404, 503),
)
async def read(request: web.Request) -> web.StreamResponse:
    key = stream_conversation(request)
    from_chunk = whole(request, "from_chunk", 0, maximum=10_000_000)
    gap_timeout = whole(request, "gap_timeout_ms", 2_000, maximum=MAX_GAP_TIMEOUT_MS) / 1000

    async def here() -> web.StreamResponse:
        await view_of(context(request), key)  # 404 before the stream opens
        batches = follow(context(request), key, request.match_info["stream_id"], from_chunk, gap_timeout)
        async with EventStream(request) as events:
            try:
                await events.start("stream")
                async for found in batches:  # one write per batch: chunks come many at a time
                    if found:
                        await events.send(render(name, data) for name, data in found)
                    else:
                        await events.keep_alive()
            finally:
                await batches.aclose()
        return events.response

    return await at_owner(request, key, conversations.topic, here, relay="event_stream")


def render(name: str, data: dict[str, object]) -> bytes:
    event_id = str(data["chunk_seq"]) if name == "chunk" else None
    return event(name, json.dumps(data), event_id)
