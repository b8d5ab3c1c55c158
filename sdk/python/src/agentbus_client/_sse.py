"""A Server-Sent Events parser, as the WHATWG HTML standard's "event stream interpretation" says.

Bytes go in as they arrive (split anywhere, even inside a UTF-8 character or between
the CR and LF of one line end); events come out when their blank line arrives:

- lines end with CRLF, LF or CR; a leading byte order mark is dropped;
- `data` lines of one event are joined with LF; an event without data is not dispatched;
- `id` sets the last event id, which stays until another `id` changes it (an id with
  NUL is ignored, an empty id clears it); every event carries the id in force;
- `retry` with only ASCII digits sets the reconnection time; anything else is ignored;
- lines starting with ':' are comments (keep-alives); unknown fields are ignored;
- an event cut off by the end of the stream (no blank line) is dropped.

httpx-sse was considered: it dispatches an empty event for the blank line after a
keep-alive comment once an id was seen, which the standard forbids.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]

_BOM = "\ufeff"


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event. id: the last event id in force; retry: the reconnection time (ms)
    in force, if the stream set one."""

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Turns the bytes of an event stream into events, incrementally."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # text after the last line end
        self._after_cr = False  # the last chunk ended with CR: an LF next belongs to it
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by this chunk, in order."""
        text = self._text.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix(_BOM)
        events: list[ServerSentEvent] = []
        for line in self._lines(text):
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _lines(self, text: str) -> list[str]:
        if self._after_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split across two chunks
        self._after_cr = text.endswith("\r")
        buffered = self._pending + text
        lines = buffered.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop()  # not ended yet ('' when the text ended with a line end)
        return lines

    def _line(self, line: str) -> ServerSentEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\0" not in value:
            self.last_event_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return ServerSentEvent(event=event, data="\n".join(data), id=self.last_event_id, retry=self.retry)
