"""Server-sent events, written once for every SSE endpoint of the bus.

An EventStream holds one of the worker's SSE client slots for as long as it is open
(max_sse_clients; the agentbus_sse_clients gauge counts them), and one of its API key's
(max_sse_clients_per_key: one key's readers cannot take every slot), sends its headers only on
start() (so a handler can still refuse with a JSON error after taking the slot), writes a
batch of events in as few socket writes of at most WRITE_BYTES as it fits in (a slow
client's stream holds one write while its socket drains, not the batch), keeps an idle
client's connection alive with a comment, and treats a client that went away as the normal
end of a stream.

    async with EventStream(request) as events:
        reader = await open_something()        # may still raise: the client gets JSON
        await events.start("following x")
        while events.connected:
            await events.send([event("record", data, cursor)])
    return events.response
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from types import TracebackType

from aiohttp import web

from bus import metrics
from bus.errors import TooManyStreams, TooManySubscribers
from bus.http.routes import context, principal

__all__ = ["WRITE_BYTES", "EventStream", "event", "json_event", "pieces"]

log = logging.getLogger(__name__)
_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_GONE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
# One socket write at most (an event larger than this goes alone): a slow client's stream
# holds one such write while its socket drains, not a whole batch of events encoded at once.
WRITE_BYTES = 65_536
_held_by_key: dict[str, int] = {}  # API key id -> its open event streams on this worker


def pieces(events: Iterable[bytes], limit: int = WRITE_BYTES) -> Iterator[bytes]:
    """The events joined into writes of at most `limit` bytes each (or one larger event),
    in order; an iterator of events is read only as far as the next write needs."""
    pending: list[bytes] = []
    size = 0
    for one in events:
        if pending and size + len(one) > limit:
            yield b"".join(pending)
            pending, size = [], 0
        pending.append(one)
        size += len(one)
    if pending:
        yield b"".join(pending)


def _forget_frames(exc: BaseException | None) -> None:
    """Drop the tracebacks of a stream's ending error and of the errors it came from. A
    reset ends a write waiting for a slow client through aiohttp's drain future: the
    traceback holds the frame awaiting that future, the frame holds the future and the
    future the error, a reference cycle that kept everything the stream held (its batch of
    records, its Kafka reader: ~1.3 MiB a reader) until the next full collection, which a
    worker with its startup heap frozen may not run for minutes."""
    pending = [exc]
    while pending:
        found = pending.pop()
        if found is not None and found.__traceback__ is not None:
            found.__traceback__ = None
            pending += [found.__cause__, found.__context__]


def event(name: str, data: str, event_id: str | None = None) -> bytes:
    """One event in the wire format: every line of data gets its own 'data:' field, as the
    SSE spec wants (a JSON document may hold newlines in pretty-printed payloads)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"{head}event: {name}\n{body}\n".encode()


def json_event(name: str, data: bytes, event_id: str | None = None) -> bytes:
    """event() for compact JSON (orjson's, pydantic's), which holds no line break: one
    'data:' field, built on bytes without decoding the document."""
    head = b"id: %s\n" % event_id.encode() if event_id is not None else b""
    return b"%sevent: %s\ndata: %s\n\n" % (head, name.encode(), data)


class EventStream:
    """One SSE response; use as `async with`, then return .response."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._ctx = context(request)
        self._key = principal(request).key_id
        self.response = web.StreamResponse(headers=_HEADERS)
        self._last_write = time.monotonic()

    async def __aenter__(self) -> EventStream:
        limits = self._ctx.settings.limits
        if self._ctx.sse_clients >= limits.max_sse_clients:
            raise TooManySubscribers("This worker serves its maximum of SSE clients", None)
        held = _held_by_key.get(self._key, 0)
        if held >= limits.max_sse_clients_per_key:
            raise TooManyStreams(
                "This API key holds its maximum of event streams on this worker; close one first",
                {"limit": limits.max_sse_clients_per_key},
                retry_after=5,
            )
        _held_by_key[self._key] = held + 1
        self._ctx.sse_clients += 1
        metrics.SSE_CLIENTS.inc()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._ctx.sse_clients -= 1
        if _held_by_key[self._key] > 1:
            _held_by_key[self._key] -= 1
        else:
            del _held_by_key[self._key]
        metrics.SSE_CLIENTS.dec()
        if self._client_left(kind):  # a normal end: no 500, no stack trace
            log.debug("event stream %s ended: the client left (%r)", self._request.path, exc)
            _forget_frames(exc)
            return True
        return False

    def _client_left(self, kind: type[BaseException] | None) -> bool:
        """The stream failed because its client's connection is gone, however it went: a
        reset (ConnectionResetError), a write to a closed socket (BrokenPipeError), or a
        reset while a write waited for a slow client's socket to drain (aiohttp raises a
        bare ConnectionError there)."""
        if kind is None or not issubclass(kind, ConnectionError):
            return False
        transport = self._request.transport
        return issubclass(kind, _GONE) or transport is None or transport.is_closing()

    @property
    def connected(self) -> bool:
        """The client is still there and the worker is not stopping (a stopping worker ends
        its streams; clients resume on another worker from their last event id)."""
        transport = self._request.transport
        return transport is not None and not transport.is_closing() and not self._ctx.draining

    async def start(self, comment: str) -> None:
        """Send the headers and a first comment line (clients see the stream is open)."""
        await self.response.prepare(self._request)
        await self._write(f": {comment}\n\n".encode())

    async def send(self, events: Iterable[bytes]) -> None:
        """Write events in as few socket writes of at most WRITE_BYTES as they fit in
        (nothing when there are none), each once the one before has drained."""
        for piece in pieces(events):
            await self._write(piece)

    async def keep_alive(self) -> None:
        """A comment line if nothing was written for sse_keepalive seconds: proxies and
        clients keep an idle connection open, and a client that left is noticed."""
        if time.monotonic() - self._last_write >= self._ctx.settings.timing.sse_keepalive:
            await self._write(b": keep-alive\n\n")

    async def _write(self, data: bytes) -> None:
        await self.response.write(data)
        self._last_write = time.monotonic()
