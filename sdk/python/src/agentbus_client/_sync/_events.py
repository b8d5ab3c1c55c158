# Generated from _async/ by scripts/generate_sync.py: edit the async file, then run it.
"""An event stream of the bus, read as an async iterator that survives dropped connections.

After a drop (the connection breaks, the idle timeout passes without even a keep-alive,
or the bus ends the answer early) it reconnects after the stream's `retry` time (or the
RetryPolicy's first wait) and resumes where it was: with `Last-Event-ID` for topics and
conversations, whose event ids are cursors, so nothing is lost or repeated; at the next
chunk for token streams. Opening is retried like any request; an error that is not
retriable ends the iteration by raising it. Breaking out of the loop closes the connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

import httpx

from agentbus_client._events import Parser, is_stream_end, never_last, next_chunk_after
from agentbus_client._shared import Params
from agentbus_client._sync._http import SyncHTTP, server_sent_events
from agentbus_client._sync._io import sleep

T = TypeVar("T")


class EventStream(Generic[T]):
    """`async for event in stream`; `last_event_id` is where a new stream would resume."""

    def __init__(
        self,
        http: SyncHTTP,
        path: str,
        parse: Parser[T],
        *,
        params: Params | None = None,
        last_event_id: str | None = None,
        is_last: Callable[[T], bool] = never_last,
        resume: bool = True,
    ) -> None:
        self._http = http
        self._path = path
        self._parse = parse
        self._params: dict[str, str | Sequence[str]] = dict(params or {})
        self._is_last = is_last
        self._resume = resume
        self.last_event_id = last_event_id
        self.reconnects = 0
        self._retry_ms: int | None = None

    def __iter__(self) -> Iterator[T]:
        return self._events()

    def _events(self) -> Iterator[T]:
        while True:
            try:
                with self._http.open_events(self._path, self._next_params(), self._headers()) as answer:
                    for event in server_sent_events(answer):
                        self._retry_ms = event.retry if event.retry is not None else self._retry_ms
                        if event.id:
                            self.last_event_id = event.id
                        item = self._parse(event)
                        if item is None:
                            continue
                        self._seen(item)
                        yield item
                        if self._is_last(item):
                            return
            except httpx.TransportError:
                self._http.fail_over()  # the connection broke while reading: resume elsewhere
            if not self._resume:
                return
            self.reconnects += 1
            sleep(self._reconnect_delay())

    def _headers(self) -> dict[str, str]:
        return {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}

    def _next_params(self) -> Params:
        return self._params

    def _seen(self, item: T) -> None:
        """Note an event's position (for streams that resume by a parameter, not an id)."""

    def _reconnect_delay(self) -> float:
        if self._retry_ms is not None:
            return self._retry_ms / 1000
        return self._http.retry.wait_initial


class ChunkStream(EventStream[T]):
    """A token stream's reader: it resumes at the chunk after the last chunk or gap seen."""

    def __init__(
        self, http: SyncHTTP, path: str, parse: Parser[T], *, from_chunk: int | None, params: Params
    ) -> None:
        super().__init__(http, path, parse, params=params, is_last=is_stream_end)
        self.next_chunk = from_chunk

    def _headers(self) -> dict[str, str]:
        return {}

    def _next_params(self) -> Params:
        if self.next_chunk is None:
            return self._params  # from the stream's first chunk
        return {**self._params, "from_chunk": str(self.next_chunk)}

    def _seen(self, item: T) -> None:
        self.next_chunk = next_chunk_after(item, self.next_chunk or 0)
