"""HTTP: writing a token stream over a WebSocket.

One connection per stream instead of one request per batch: a producer sends chunk frames
as its model makes tokens, the owner puts them in the stream's records as POST
.../stream-chunks does (group commit), and answers every frame, in order, once its
chunks are in Kafka. The end is the last frame. A consumer's cancel reaches the producer
at once, as a frame. Other workers relay the connection to the conversation's owner.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from bus.cluster.forwarding import at_owner
from bus.cluster.ownership import is_owner
from bus.conversations.models import ConversationView
from bus.errors import (
    BusError,
    ConversationNotFound,
    InvalidJson,
    InvalidParameter,
    OwnerMoved,
    Unprocessable,
    WebSocketRequired,
)
from bus.http.access import Access
from bus.http.routes import Param, context, field_errors, refuse_non_json_numbers, route
from bus.kafka.context import BusContext
from bus.streams import service as streams
from bus.streams.http import STREAM, stream_conversation
from bus.streams.models import SocketFrame, StreamEnd, StreamEndSpec, stream_view_key
from bus.streams.service import Pushed, live_stream
from bus.tools.service import require_open
from bus.wire import NAME_PATTERN, STREAM_ID_PATTERN
from tables.conversations import conversations

__all__: list[str] = []  # nothing here is for other modules: routes register themselves

STREAM_ID = re.compile(STREAM_ID_PATTERN)
RECHECK_S = 0.1  # a conversation closed or moved takes chunks for at most this long after
CLOSE_ENDED = 4409  # close code after the stream ended under a producer (4000 + 409)


@route(
    "GET",
    STREAM + "/write",
    summary="Write a stream over a WebSocket: chunk frames answered in order once in Kafka, then the end",
    tag="streams",
    access=Access.WRITE,
    audited=False,
    websocket=True,
    status=101,
    params=(Param("sender", "The producing agent (a participant, if the conversation names any)"),),
    errors=(400, 403, 404, 409, 503),
)
async def write_socket(request: web.Request) -> web.StreamResponse:
    key, stream_id = stream_conversation(request), request.match_info["stream_id"]

    async def here() -> web.StreamResponse:
        sender = request.query.get("sender") or None
        if not STREAM_ID.match(stream_id):
            raise InvalidParameter("stream_id is 1 to 128 of A-Z a-z 0-9 _ -", {"stream_id": stream_id[:200]})
        if sender is not None and not re.match(NAME_PATTERN, sender):
            raise InvalidParameter("sender is not an agent name", {"sender": sender[:200]})
        ctx = context(request)
        await streams.check_open(ctx, key, sender)
        streams.refuse_if_over(
            stream_view_key(key, stream_id), live_stream(stream_view_key(key, stream_id)).end
        )
        socket = web.WebSocketResponse(
            heartbeat=ctx.settings.timing.sse_keepalive, max_msg_size=ctx.settings.limits.max_request_bytes
        )
        if not socket.can_prepare(request).ok:
            raise WebSocketRequired("Open this route as a WebSocket (Upgrade: websocket)", None)
        await socket.prepare(request)
        await StreamSocket(ctx, key, stream_id, sender, socket).run()
        return socket

    return await at_owner(request, key, conversations.topic, here, relay="websocket")


@dataclass
class Answer:
    """A frame's answer, sent in frame order: once its chunks are in Kafka, or its error."""

    frame: int
    frame_id: str | int | None
    accepted: int = 0
    written: asyncio.Future[None] | None = None
    ended: asyncio.Task[StreamEnd] | None = None  # the end frame's answer: the stream's end
    error: BusError | None = None


class StreamSocket:
    """One producer's connection on the owner."""

    def __init__(
        self, ctx: BusContext, key: str, stream_id: str, sender: str | None, socket: web.WebSocketResponse
    ) -> None:
        self.ctx, self.key, self.stream_id, self.sender, self.socket = ctx, key, stream_id, sender, socket
        self.frames = 0
        self.checked_at = 0.0  # when require_writable last looked
        self.answers: asyncio.Queue[Answer] = asyncio.Queue()
        self.ending = False  # the producer sent the end: the end the owner hands over is its own
        self.feed: asyncio.Queue[Pushed] = asyncio.Queue()  # the stream's end, or word of a move

    async def run(self) -> None:
        live = live_stream(stream_view_key(self.key, self.stream_id))
        live.readers.add(self.feed)
        tasks = [asyncio.create_task(self.answer_in_order()), asyncio.create_task(self.watch())]
        try:
            async for message in self.socket:
                if message.type == WSMsgType.TEXT:
                    self.frames += 1
                    await self.take(message.data)
                elif message.type == WSMsgType.BINARY:
                    self.frames += 1
                    await self.refuse(Unprocessable("Send frames as JSON text", None))
                if self.ending or self.socket.closed:
                    break
            if self.ending:
                await tasks[0]  # the end's answer is the last
        finally:
            live.readers.discard(self.feed)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.socket.close()

    async def take(self, text: str) -> None:
        try:
            refuse_non_json_numbers(text.encode())
            frame = SocketFrame.model_validate_json(text)
        except InvalidJson as exc:
            await self.refuse(exc)
            return
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                await self.refuse(InvalidJson("The frame is not valid JSON", None))
            else:
                await self.refuse(
                    Unprocessable("The frame does not match the expected shape", field_errors(exc))
                )
            return
        if frame.end is not None:
            self.ending = True
            spec = StreamEndSpec(stream_id=self.stream_id, sender=self.sender, **frame.end.model_dump())
            ended = asyncio.create_task(streams.end_stream(self.ctx, self.key, spec))
            await self.answers.put(Answer(self.frames, frame.id, ended=ended))
            return
        try:
            self.require_writable()
            chunks = frame.all_chunks()
            written = streams.enqueue(self.ctx, self.key, self.stream_id, chunks)
        except BusError as exc:
            await self.answers.put(Answer(self.frames, frame.id, error=exc))
            return
        await self.answers.put(Answer(self.frames, frame.id, len(chunks), written))

    async def refuse(self, error: BusError) -> None:
        await self.answers.put(Answer(self.frames, None, error=error))

    def require_writable(self) -> None:
        """Checked without waiting, at most every RECHECK_S (frames come by the hundred per
        second): the owner still owns the conversation and it is still open."""
        now = time.monotonic()
        if now - self.checked_at < RECHECK_S:
            return
        self.checked_at = now
        if not is_owner(self.key, conversations.topic):
            raise OwnerMoved("This worker no longer owns the conversation; reconnect", {"key": self.key})
        view = conversations.get(self.key, ConversationView)
        if view is None:
            raise ConversationNotFound(f"Conversation {self.key} does not exist", {"conversation": self.key})
        require_open(view)

    async def answer_in_order(self) -> None:
        while True:
            answer = await self.answers.get()
            head = {"frame": answer.frame, "id": answer.frame_id}
            try:
                if answer.error is not None:
                    raise answer.error
                if answer.ended is not None:
                    end = await answer.ended
                    await self.send({**head, "ended": end.model_dump(mode="json")})
                    return
                if answer.written is not None:
                    await answer.written
                await self.send({**head, "accepted": answer.accepted})
            except BusError as error:
                await self.send({**head, "status": error.status, **error.to_body()})
                if fatal(error) or answer.ended is not None:
                    await self.close(error)
                    return

    async def watch(self) -> None:
        """Tell the producer at once when a consumer cancels, or the owner moves."""
        while True:
            item = await self.feed.get()
            if item.end is not None and not self.ending:
                word = "cancelled" if item.end.status == "cancelled" else "ended"
                await self.send({word: item.end.model_dump(mode="json")})
                await self.socket.close(code=CLOSE_ENDED, message=f"stream_{word}".encode())
                return
            if item.moved:
                await self.close(OwnerMoved("This worker no longer owns the conversation; reconnect", None))
                return

    async def send(self, body: dict[str, Any]) -> None:
        if not self.socket.closed:
            await self.socket.send_str(json.dumps(body))

    async def close(self, error: BusError) -> None:
        await self.socket.close(code=4000 + error.status, message=error.code.encode())


def fatal(error: BusError) -> bool:
    """Errors after which no later frame could succeed: the connection closes."""
    return error.status in (403, 404, 409) or error.status >= 500
