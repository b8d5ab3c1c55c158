"""The worker's HTTP connections: a deadline for a request's headers, kept once for every
route at the protocol level (aiohttp's RequestHandler), before any middleware runs.

aiohttp has no timeout for reading a request's headers. Its keep-alive timer (one hour
by default, started when a connection opens and again after each answer) was the only
bound, so a client sending a header line now and then held its connection, and a
worker's file descriptors, for that long. Here:

- a connection that has not sent a complete request head (request line and headers)
  within `header_timeout` seconds of opening is closed;
- on a kept-alive connection the same clock starts again at the first byte of the next
  request; until that byte, the connection is idle and aiohttp's keep-alive timer governs
  it (`keepalive_timeout`, 3630 s: left as aiohttp sets it, so that it outlasts the idle
  timeout of a proxy in front);
- once the head is in, the deadline is gone: reading the body, a long handler, an event
  stream or a WebSocket are not limited by it.

Closing is a plain close, without an answer: the client has not finished asking. The
closes are counted (`agentbus_http_header_timeouts_total`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.web import AppRunner, Server
from aiohttp.web_protocol import RequestHandler

from bus.metrics import HEADER_TIMEOUTS

__all__ = ["GuardedRunner"]


class _GuardedHandler(RequestHandler):
    """aiohttp's protocol for one connection, closed when a request's head takes longer
    than header_timeout.

    It reads two private fields of RequestHandler: `_waiter` (pending while the
    connection waits for its next request: no complete head and none being answered)
    and `_request_count` (grows by one per request head parsed);
    tests/unit/test_http_connections.py pins both through a real server."""

    __slots__ = ("_header_deadline", "_header_timeout")

    def __init__(self, manager: Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_deadline()  # the first request's clock starts when the connection opens

    def data_received(self, data: bytes) -> None:
        was_waiting = self._waiting_for_request()
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            self._cancel_deadline()  # a complete head arrived
        elif was_waiting and data and self._header_deadline is None:
            self._start_deadline()  # the first byte of the next request on a kept-alive connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _waiting_for_request(self) -> bool:
        return self._waiter is not None and not self._waiter.done()

    def _start_deadline(self) -> None:
        self._header_deadline = self._loop.call_later(self._header_timeout, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _deadline_passed(self) -> None:
        self._header_deadline = None
        if self._waiting_for_request():  # still no complete head: a request being answered is not cut
            HEADER_TIMEOUTS.inc()
            self.force_close()


class _GuardedServer(Server):
    """aiohttp's low-level server (the protocol factory a site listens with), making
    guarded connections."""

    def __init__(self, plain: Server, header_timeout: float) -> None:
        super().__init__(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **plain._kwargs,
        )
        self._header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, header_timeout=self._header_timeout, loop=self._loop, **self._kwargs)


class GuardedRunner(AppRunner):
    """An aiohttp AppRunner whose server closes connections that do not send a request's
    head within header_timeout seconds (see the module docstring)."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> Server:
        # The application's server, as aiohttp builds it (handler, request factory, the
        # application's handler_args), with the guarded protocol.
        return _GuardedServer(await super()._make_server(), self._header_timeout)
