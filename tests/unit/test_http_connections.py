"""The header deadline of bus/http/connections.py, on a real aiohttp server over loopback:
what it closes, what it leaves alone, and the private fields of aiohttp's RequestHandler
it reads (a change there fails these tests instead of silently undoing the guard)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator

import faust
import pytest
from aiohttp import web
from faust.web.drivers.aiohttp import Web

from bus.http.connections import GuardedRunner
from bus.kafka.faust_patches import use_web_runner

TIMEOUT = 0.5
HEAD = b"GET /slow HTTP/1.1\r\nHost: test\r\nX-Padding: abc\r\n\r\n"


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "0")))
    return web.Response(text="ok")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = GuardedRunner(app, access_log=None, header_timeout=TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server writes until it closes, which must be within seconds."""
    return await asyncio.wait_for(reader.read(), seconds)


async def answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    body = await asyncio.wait_for(reader.readexactly(2), 5)
    return head.split(b"\r\n", 1)[0] + b" " + body


async def trickle(writer: asyncio.StreamWriter, data: bytes, pause: float) -> None:
    with contextlib.suppress(ConnectionError):  # the server may close in between
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(pause)


async def test_a_connection_that_sends_nothing_is_closed_after_the_timeout(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    assert await closed_within(reader, TIMEOUT + 2) == b""
    assert time.monotonic() - started >= TIMEOUT * 0.9
    writer.close()


async def test_a_head_trickled_past_the_timeout_is_cut_off(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sending = asyncio.create_task(trickle(writer, HEAD, TIMEOUT / 5))  # needs ~10 timeouts
    assert await closed_within(reader, TIMEOUT + 2) == b""
    sending.cancel()
    writer.close()


async def test_a_slow_head_complete_within_the_timeout_is_answered(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for part in (HEAD[:10], HEAD[10:25], HEAD[25:]):
        writer.write(part)
        await asyncio.sleep(TIMEOUT / 5)
    assert await answer(reader) == b"HTTP/1.1 200 OK ok"
    writer.close()


async def test_neither_a_long_answer_nor_an_idle_kept_alive_connection_is_cut(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD.replace(b"/slow", f"/slow?s={TIMEOUT * 2}".encode()))
    assert await answer(reader) == b"HTTP/1.1 200 OK ok"
    await asyncio.sleep(TIMEOUT * 2)  # idle between requests: keepalive_timeout's business
    writer.write(HEAD)
    assert await answer(reader) == b"HTTP/1.1 200 OK ok"
    writer.close()


async def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD)
    assert await answer(reader) == b"HTTP/1.1 200 OK ok"
    await asyncio.sleep(TIMEOUT * 2)
    sending = asyncio.create_task(trickle(writer, HEAD, TIMEOUT / 5))
    started = time.monotonic()
    assert await closed_within(reader, TIMEOUT + 2) == b""
    assert time.monotonic() - started >= TIMEOUT * 0.9  # counted from the first byte, not the answer
    sending.cancel()
    writer.close()


def test_faust_serves_through_the_runner_it_built_when_its_driver_was_made() -> None:
    """use_web_runner replaces Web._runner; Faust must still start and stop the site from it."""
    assert "self._runner.setup()" in inspect.getsource(Web.start_server)
    assert "self._runner" in inspect.getsource(Web._new_transport_tcp)
    assert "self._runner.cleanup()" in inspect.getsource(Web.stop_server)
    app = faust.App("test-web-runner", web_in_thread=False)
    assert isinstance(app.web._runner, web.AppRunner)
    use_web_runner(app, lambda a: GuardedRunner(a, access_log=None, header_timeout=TIMEOUT))
    assert isinstance(app.web._runner, GuardedRunner)
    assert app.web._runner.app is app.web.web_app
