"""Token streams: a writer (WebSocket or HTTP) and a reader (SSE, in chunk order, resuming).

The writer numbers chunks 0, 1, 2, ... in write() order. Over a WebSocket (the default)
each write is a frame sent at once, without waiting for its answer until `window` frames
are unanswered (then it waits for the oldest: backpressure); the bus answers each frame
once its chunks are in Kafka. A lost connection, or the bus closing it because the
conversation moved (4503), is opened again and every unanswered frame sent again:
readers drop repeats. Over HTTP, chunks are buffered and posted `batch_size` at a time
(and on flush and close). Either way a consumer's cancel raises StreamCancelled from the
next write or flush. `async with` ends the stream: `complete` after the block, `error`
when it raised (`cancelled` when it was cancelled); a failing end after a failed block is
not raised over the block's own exception.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Literal

import httpx
import stamina
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, WebSocketNetworkError, WebSocketUpgradeError
from httpx_ws import aconnect_ws as _connect_ws
from pydantic import JsonValue
from typing_extensions import Self

from agentbus_client._async._admin import _Resource
from agentbus_client._async._events import AsyncChunkStream
from agentbus_client._async._http import AsyncHTTP
from agentbus_client._errors import APIError, error_from_answer
from agentbus_client._events import StreamEvent, stream_event
from agentbus_client._shared import Scope, body_of, keyed_path, new_id, parse, query
from agentbus_client.models.streams import (
    CancelStream,
    ChunksReceipt,
    ChunksSpec,
    EndStatus,
    SocketEnd,
    StreamEnd,
    StreamEndSpec,
)
from agentbus_client.models.tools import Usage

RETRY_CLOSE_CODE = 4503  # the bus closed the socket with a retriable error (owner_moved)
RETRIABLE_STATUSES = (429, 502, 503, 504)


class _SocketLost(Exception):
    """The connection went away before the answers: open it again and resend."""


class AsyncStreamWriter:
    """Writes one stream; made by `client.streams.writer(...)`. See the module docstring."""

    def __init__(
        self,
        http: AsyncHTTP,
        scope: Scope,
        conversation: str,
        stream_id: str,
        *,
        sender: str | None,
        transport: Literal["ws", "http"],
        window: int = 64,
        batch_size: int = 32,
    ) -> None:
        self._http = http
        self._conversation_path = keyed_path("conversations", scope, conversation)
        self._write_path = keyed_path("streams", scope, conversation, stream_id, "write")
        self.stream_id = stream_id
        self.sender = sender
        self.transport = transport
        self.window = window
        self.batch_size = batch_size
        self.next_seq = 0
        self.usage: Usage | None = None  # sent with the end
        self.end: StreamEnd | None = None  # the bus's answer to the end
        self.reconnects = 0
        self._buffer: list[dict[str, Any]] = []  # http: chunks not posted yet
        self._unanswered: list[dict[str, Any]] = []  # ws: frames sent (or to send) without an answer
        self._sent = 0  # ws: how many of _unanswered went out on the current socket
        self._socket: AsyncWebSocketSession | None = None
        self._socket_cm: Any = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is None:
                await self.close("complete")
            elif self.end is None:
                status: EndStatus = "error" if isinstance(exc, Exception) else "cancelled"
                try:
                    await self.close(status, repr(exc)[:4096])
                except (APIError, OSError, httpx.HTTPError):
                    pass  # the block's own exception is the one that matters
        finally:
            await self._drop_socket()

    async def write(self, data: JsonValue) -> int:
        """Send (or buffer) one chunk; its chunk_seq."""
        if self.end is not None:
            raise RuntimeError(f"stream {self.stream_id} has ended")
        seq = self.next_seq
        self.next_seq += 1
        chunk = {"chunk_seq": seq, "data": data}
        if self.transport == "ws":
            self._unanswered.append(chunk)
            await self._exchange(self.window)
        else:
            self._buffer.append(chunk)
            if len(self._buffer) >= self.batch_size:
                await self.flush()
        return seq

    async def flush(self) -> None:
        """Return once every chunk written so far is in Kafka (or raise why not)."""
        if self.transport == "ws":
            await self._exchange(0)
        elif self._buffer:
            body = body_of(ChunksSpec, stream_id=self.stream_id, sender=self.sender, chunks=self._buffer)
            await self._http.request("POST", self._conversation_path + "/stream-chunks", json=body)
            self._buffer = []

    async def close(self, status: EndStatus = "complete", error: str = "") -> StreamEnd:
        """Flush, then end the stream with status (once); the end as the bus wrote it."""
        if self.end is not None:
            return self.end
        last = self.next_seq - 1
        if status == "complete":
            await self.flush()
        if self.transport == "ws":
            end = body_of(SocketEnd, status=status, last_chunk_seq=last, error=error, usage=self.usage)
            self._unanswered.append({"end": end})
            await self._exchange(0)
            await self._drop_socket()
        else:
            body = body_of(
                StreamEndSpec,
                stream_id=self.stream_id,
                sender=self.sender,
                status=status,
                last_chunk_seq=last,
                error=error,
                usage=self.usage,
            )
            answer = await self._http.request("POST", self._conversation_path + "/stream-end", json=body)
            self.end = parse(StreamEnd, answer)
        assert self.end is not None
        return self.end

    # -- the WebSocket -------------------------------------------------------------------

    async def _exchange(self, unanswered_at_most: int) -> None:
        """Send what is unsent, then read answers until at most that many frames wait for one;
        a lost connection is opened again (retried as any request) and every unanswered
        frame sent again."""
        options = {**self._http.retry_options(), "on": _SocketLost}
        async for attempt in stamina.retry_context(**options):
            with attempt:
                socket = await self._connected()
                try:
                    while self._sent < len(self._unanswered):
                        await socket.send_text(json.dumps(self._unanswered[self._sent]))
                        self._sent += 1
                    while len(self._unanswered) > unanswered_at_most:
                        self._settle(json.loads(await socket.receive_text()))
                except (WebSocketNetworkError, httpx.TransportError, OSError) as exc:
                    await self._lost(repr(exc))
                except WebSocketDisconnect as closed:
                    self._refused_by_close(closed)
                    await self._lost(f"closed {closed.code}")

    async def _connected(self) -> AsyncWebSocketSession:
        if self._socket is not None:
            return self._socket
        params = query(sender=self.sender)
        self._socket_cm = _connect_ws(self._http.url(self._write_path), self._http.client, params=params)
        try:
            self._socket = await self._socket_cm.__aenter__()
        except WebSocketUpgradeError as refused:
            self._socket_cm = None
            if refused.response.status_code in RETRIABLE_STATUSES:
                raise _SocketLost(f"upgrade refused with {refused.response.status_code}") from refused
            raise await self._refusal(refused.response.status_code) from refused
        except (WebSocketNetworkError, httpx.TransportError, OSError) as exc:
            self._socket_cm = None
            self._http.fail_over()
            raise _SocketLost(repr(exc)) from exc
        self._sent = 0
        assert self._socket is not None
        return self._socket

    async def _refusal(self, status: int) -> APIError:
        """Why the bus refused the upgrade: the same request as a plain GET says, as JSON."""
        try:
            await self._http.request("GET", self._write_path, params=query(sender=self.sender))
        except APIError as refusal:
            return refusal
        return error_from_answer(status, None)

    def _settle(self, answer: dict[str, Any]) -> None:
        if "cancelled" in answer:
            raise error_from_answer(
                409,
                {
                    "error": {
                        "code": "stream_cancelled",
                        "message": "a consumer cancelled the stream",
                        "details": answer["cancelled"],
                    }
                },
            )
        if "error" in answer:
            status = int(answer.get("status", 400))
            if status in RETRIABLE_STATUSES:
                raise _SocketLost(str(answer["error"].get("code")))
            self._unanswered.pop(0)
            self._sent -= 1
            raise error_from_answer(status, {"error": answer["error"]})
        self._unanswered.pop(0)
        self._sent -= 1
        if "ended" in answer:
            self.end = StreamEnd.model_validate(answer["ended"])

    def _refused_by_close(self, closed: WebSocketDisconnect) -> None:
        """A close 4000 + status with the error code as reason is a refusal, unless retriable."""
        if closed.code >= 4000 and closed.code != RETRY_CLOSE_CODE and closed.reason:
            raise error_from_answer(
                closed.code - 4000, {"error": {"code": closed.reason, "message": closed.reason}}
            )

    async def _lost(self, why: str) -> None:
        self.reconnects += 1
        await self._drop_socket()
        raise _SocketLost(why)

    async def _drop_socket(self) -> None:
        if self._socket_cm is not None:
            socket_cm, self._socket_cm, self._socket = self._socket_cm, None, None
            try:
                await socket_cm.__aexit__(None, None, None)
            except (WebSocketNetworkError, WebSocketDisconnect, httpx.TransportError, OSError):
                pass  # closing a connection that is gone already


class AsyncStreams(_Resource):
    """Token streams of conversations: write, read, cancel."""

    def writer(
        self,
        conversation: str,
        stream_id: str | None = None,
        *,
        sender: str | None = None,
        transport: Literal["ws", "http"] = "ws",
        window: int = 64,
        batch_size: int = 32,
    ) -> AsyncStreamWriter:
        """A writer for a new stream (stream_id defaults to a fresh id), used as `async with`.
        sender defaults to the client's agent."""
        return AsyncStreamWriter(
            self._http,
            self._scope,
            conversation,
            stream_id or new_id(8),
            sender=sender or self._scope.agent_id,
            transport=transport,
            window=window,
            batch_size=batch_size,
        )

    def read(
        self,
        conversation: str,
        stream_id: str,
        *,
        from_chunk: int | None = None,
        gap_timeout_ms: int | None = None,
    ) -> AsyncChunkStream[StreamEvent]:
        """The stream's events in chunk_seq order, as `async for`: StreamChunk and StreamGap,
        then its StreamEnd (a chunk that came after its gap was reported: StreamChunk(late=True)).
        Waits for a stream that has not started; resumes after a drop with each chunk once."""
        read_path = keyed_path("streams", self._scope, conversation, stream_id)
        params = query(gap_timeout_ms=gap_timeout_ms)
        return AsyncChunkStream(self._http, read_path, stream_event, from_chunk=from_chunk, params=params)

    async def cancel(self, conversation: str, stream_id: str, *, reason: str | None = None) -> StreamEnd:
        """Cancel a stream as its consumer: the producer's next write raises StreamCancelled."""
        body = body_of(CancelStream, reason=reason)
        cancel_path = keyed_path("streams", self._scope, conversation, stream_id, "cancel")
        return parse(StreamEnd, await self._http.request("POST", cancel_path, json=body))

    async def write_chunks(
        self,
        conversation: str,
        stream_id: str,
        chunks: list[dict[str, Any]] | None = None,
        *,
        chunk_seq: int | None = None,
        data: JsonValue = None,
        sender: str | None = None,
    ) -> ChunksReceipt:
        """Post chunks ({chunk_seq, data}) as they are, or one chunk (chunk_seq, data), in one
        request; the receipt counts them (`accepted`)."""
        one = {"chunk_seq": chunk_seq, "data": data} if chunks is None else {}
        body = body_of(
            ChunksSpec, stream_id=stream_id, sender=sender or self._scope.agent_id, chunks=chunks, **one
        )
        answer = await self._http.request(
            "POST", keyed_path("conversations", self._scope, conversation, "stream-chunks"), json=body
        )
        return parse(ChunksReceipt, answer)

    async def end(
        self,
        conversation: str,
        stream_id: str,
        *,
        status: EndStatus = "complete",
        last_chunk_seq: int | None = None,
        error: str | None = None,
        usage: Usage | dict[str, Any] | None = None,
        sender: str | None = None,
    ) -> StreamEnd:
        body = body_of(
            StreamEndSpec,
            stream_id=stream_id,
            sender=sender or self._scope.agent_id,
            status=status,
            last_chunk_seq=last_chunk_seq,
            error=error,
            usage=usage,
        )
        answer = await self._http.request(
            "POST", keyed_path("conversations", self._scope, conversation, "stream-end"), json=body
        )
        return parse(StreamEnd, answer)
