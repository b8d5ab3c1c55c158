"""Token streams for the agent SDK: a writer that batches chunks, and the events a reader gets.

    async with client.stream("trip-42", "reply-1") as s:
        async for token in model.tokens():
            await s.write(token)
        s.usage = Usage(output_tokens=n)
    # ended: complete, or error (cancelled) if the block raised (was cancelled)

The writer numbers chunks 0, 1, 2, ... in the order of write() and keeps one chunk POST
in flight at a time: what is written while a POST is on its way goes in the next one
(up to MAX_BATCH chunks or about MAX_BATCH_BYTES of data), so a fast model is paced by
the bus's acknowledgements, not by one request per token. write() returns at once
unless a full batch is waiting for the POST in flight (then it waits: backpressure).
A POST that fails (after the client's retries) fails the next write() and the exit;
the chunks it held are reported by readers as gaps. A consumer's cancel shows as
BusAgentError stream_cancelled. Nothing here opens connections: the client does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TypeAlias

import aiohttp
from pydantic import JsonValue

from bus.streams.models import EndStatus, StreamEnd
from bus.tools.models import Usage

log = logging.getLogger(__name__)
Post = Callable[[str, dict[str, Any]], Awaitable[Any]]  # (path, body) -> the JSON answer, or raise
MAX_BATCH = 1000  # chunks in one POST: the bus's limit
MAX_BATCH_BYTES = 256 * 1024  # about this much chunk data in one POST
OVER_CODES = ("stream_cancelled", "stream_ended")  # the stream takes no more writes, nor an end
__all__ = ["StreamChunk", "StreamEvent", "StreamGap", "StreamWriter"]


@dataclass(frozen=True)
class StreamChunk:
    """A chunk; late: it came after its gap was reported, out of chunk_seq order."""

    chunk_seq: int
    data: JsonValue
    late: bool = False


@dataclass(frozen=True)
class StreamGap:
    """Chunks from_chunk_seq to to_chunk_seq (both included) will not come."""

    from_chunk_seq: int
    to_chunk_seq: int


StreamEvent: TypeAlias = StreamChunk | StreamGap | StreamEnd


class Transport(Protocol):
    """How a writer's batches and end reach the bus: POSTs, or frames of a WebSocket."""

    async def send_chunks(self, body: dict[str, Any]) -> None: ...

    async def send_end(self, body: dict[str, Any]) -> Any: ...

    async def close(self) -> None: ...


class PostTransport:
    """A POST .../stream-chunks per batch and a POST .../stream-end."""

    def __init__(self, post: Post, conversation_path: str) -> None:
        self._post, self.path = post, conversation_path

    async def send_chunks(self, body: dict[str, Any]) -> None:
        await self._post(self.path + "/stream-chunks", body)

    async def send_end(self, body: dict[str, Any]) -> Any:
        return await self._post(self.path + "/stream-end", body)

    async def close(self) -> None:
        return None


class StreamWriter:
    """Writes one stream as `async with`; see the module docstring for batching and failures."""

    def __init__(self, transport: Transport, stream_id: str, sender: str | None) -> None:
        self._transport = transport
        self.stream_id = stream_id
        self.sender = sender
        self.usage: Usage | None = None  # sent with the end
        self.end: StreamEnd | None = None  # the bus's answer to the end, after the block
        self.next_seq = 0
        self.requests = 0  # chunk POSTs accepted so far
        self._waiting: list[tuple[dict[str, Any], int]] = []  # (chunk, its size) not yet posted
        self._waiting_bytes = 0
        self._sending: asyncio.Task[None] | None = None
        self._failure: Exception | None = None

    async def __aenter__(self) -> StreamWriter:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is None:
                await self.close("complete")
                return
            status: EndStatus = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
            try:  # the block's exception goes on; a failing end only gets logged
                await self.close(status, repr(exc))
            except Exception as failed:
                log.warning("stream %s: could not end it after %r: %r", self.stream_id, exc, failed)
        finally:
            await self._transport.close()

    async def write(self, data: JsonValue) -> int:
        """Queue one chunk; its chunk_seq. Waits only while a full batch waits for the POST in flight."""
        self._check_open()
        seq, size = self.next_seq, len(json.dumps(data))
        self.next_seq += 1
        self._waiting.append(({"chunk_seq": seq, "data": data}, size))
        self._waiting_bytes += size
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_waiting())
        if len(self._waiting) >= MAX_BATCH or self._waiting_bytes >= MAX_BATCH_BYTES:
            await self.flush()
        return seq

    async def flush(self) -> None:
        """Wait until every chunk written so far is in Kafka (or raise why not)."""
        while self._sending is not None and not self._sending.done():
            await asyncio.shield(self._sending)  # a cancelled writer leaves the POST to finish
        if self._failure is not None:
            raise self._failure

    async def close(self, status: EndStatus = "complete", error: str = "") -> StreamEnd | None:
        """Send what waits, then the end (once); the end, or None when the stream was over
        already (a consumer cancelled it) and status is not complete.

        A complete close raises what failed a chunk write (after ending the stream with
        error, when it still takes an end).
        """
        if self.end is not None:
            return self.end
        try:
            await self.flush()
        except Exception as exc:
            over = getattr(exc, "code", None) in OVER_CODES
            if status == "complete":
                if not over:
                    await self._send_end("error", f"a chunk write failed: {exc!r}")
                raise
            if over:
                return None
        return await self._send_end(status, error)

    def _check_open(self) -> None:
        if self.end is not None:
            raise RuntimeError(f"stream {self.stream_id} has ended")
        if self._failure is not None:
            raise self._failure

    async def _send_end(self, status: EndStatus, error: str) -> StreamEnd:
        body: dict[str, Any] = {
            "stream_id": self.stream_id,
            "status": status,
            "last_chunk_seq": self.next_seq - 1,
            "error": error[:4096],
        }
        if self.sender is not None:
            body["sender"] = self.sender
        if self.usage is not None:
            body["usage"] = self.usage.model_dump(mode="json")
        self.end = StreamEnd.model_validate(await self._transport.send_end(body))
        return self.end

    async def _send_waiting(self) -> None:
        """One POST at a time, each with what waited meanwhile, until nothing waits."""
        while self._waiting and self._failure is None:
            batch = self._take_batch()
            body: dict[str, Any] = {"stream_id": self.stream_id, "chunks": batch}
            if self.sender is not None:
                body["sender"] = self.sender
            try:
                await self._transport.send_chunks(body)
            except Exception as exc:
                self._failure = exc
                return
            self.requests += 1

    def _take_batch(self) -> list[dict[str, Any]]:
        count, size = 0, 0
        for _, chunk_size in self._waiting[:MAX_BATCH]:
            if count and size + chunk_size > MAX_BATCH_BYTES:
                break
            count, size = count + 1, size + chunk_size
        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        self._waiting_bytes -= size
        return [chunk for chunk, _ in batch]


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[StreamEvent]:
    """The chunk, gap and end events of an open stream response (comments skipped)."""
    name, data = "message", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data:
            event = event_of(name, json.loads(data))
            if event is not None:
                yield event
            name, data = "message", ""


def event_of(name: str, data: dict[str, Any]) -> StreamEvent | None:
    """None for an event this SDK does not know (a newer bus may send more kinds)."""
    if name == "chunk":
        return StreamChunk(chunk_seq=data["chunk_seq"], data=data.get("data"))
    if name == "late":
        return StreamChunk(chunk_seq=data["chunk_seq"], data=data.get("data"), late=True)
    if name == "gap":
        return StreamGap(from_chunk_seq=data["from_chunk_seq"], to_chunk_seq=data["to_chunk_seq"])
    if name == "end":
        return StreamEnd.model_validate(data)
    return None
