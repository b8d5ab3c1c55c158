"""Slow clients against a live fleet: connections that trickle a request's head are closed
after AGENTBUS_HEADER_TIMEOUT while other clients are served, and a slow head that is
complete in time is answered."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import metric_value

pytestmark = pytest.mark.integration

HEADER_TIMEOUT = 3.0  # AGENTBUS_HEADER_TIMEOUT of the session fleet (conftest)
SLOW_CLIENTS_PER_WORKER = 60
GIVE_UP_S = 20.0  # the head takes ~55 s at a byte a second: a connection open this long was never cut
HEAD = b"GET /healthz HTTP/1.1\r\nHost: agentbus\r\nUser-Agent: slow\r\n\r\n"


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    address = urlsplit(url)
    assert address.hostname is not None and address.port is not None
    return await asyncio.open_connection(address.hostname, address.port)


async def seconds_until_closed_while_trickling(url: str) -> float:
    """Send HEAD a byte a second: how long the worker kept the connection open
    (GIVE_UP_S: it never closed it)."""
    reader, writer = await connect(url)
    started = time.monotonic()
    try:
        for byte in HEAD:
            if time.monotonic() - started >= GIVE_UP_S:
                break
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                answered = await asyncio.wait_for(reader.read(1), 1.0)
            except TimeoutError:
                continue
            if answered:  # the whole head got through and was answered
                break
            return time.monotonic() - started
        return GIVE_UP_S
    except ConnectionError:
        return time.monotonic() - started
    finally:
        writer.close()


async def status_of_a_slow_complete_head(url: str) -> bytes:
    """HEAD in three parts over about half the timeout: the status line answered."""
    reader, writer = await connect(url)
    try:
        third = len(HEAD) // 3
        for part in (HEAD[:third], HEAD[third : 2 * third], HEAD[2 * third :]):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(HEADER_TIMEOUT / 5)
        return (await asyncio.wait_for(reader.readline(), 10)).strip()
    finally:
        writer.close()


async def header_timeouts(http: aiohttp.ClientSession, url: str) -> float:
    return await metric_value(http, url, "agentbus_http_header_timeouts_total")


async def test_slow_heads_are_cut_off_while_other_clients_are_served(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    before = [await header_timeouts(http, url) for url in fleet.urls]
    slow = [
        asyncio.create_task(seconds_until_closed_while_trickling(url))
        for url in fleet.urls
        for _ in range(SLOW_CLIENTS_PER_WORKER)
    ]
    try:
        await asyncio.sleep(1.0)  # every slow client is connected and trickling
        for url in fleet.urls:
            async with http.get(f"{url}/v1/topics") as r:
                assert r.status == 200, await r.text()
            assert await status_of_a_slow_complete_head(url) == b"HTTP/1.1 200 OK"
        held = await asyncio.gather(*slow)
    finally:
        for task in slow:
            task.cancel()
    assert min(held) >= HEADER_TIMEOUT * 0.9, sorted(held)[:5]
    assert max(held) < HEADER_TIMEOUT + 5, sorted(held)[-5:]  # slack for a loaded machine
    for url, count in zip(fleet.urls, before, strict=True):
        assert await header_timeouts(http, url) >= count + SLOW_CLIENTS_PER_WORKER


async def test_a_connection_that_never_sends_a_byte_is_closed(fleet: Fleet) -> None:
    reader, writer = await connect(fleet.urls[0])
    started = time.monotonic()
    with contextlib.closing(writer):
        assert await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + 5) == b""
    assert time.monotonic() - started >= HEADER_TIMEOUT * 0.9
