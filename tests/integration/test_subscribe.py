"""SSE subscribe: start positions, exact resume, keep-alives and clean disconnects."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import time
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import metric_value, open_sse

pytestmark = pytest.mark.integration


def ref(topic: dict[str, Any]) -> str:
    return f"{topic['namespace']}/{topic['tenant']}/{topic['name']}"


async def publish_many(
    http: aiohttp.ClientSession, url: str, topic: dict[str, Any], start: int, count: int
) -> None:
    records = [
        {"topic": ref(topic), "key": f"k{n % 5}", "payload": {"n": n}} for n in range(start, start + count)
    ]
    async with http.post(f"{url}/v1/publish/batch", json={"records": records}) as r:
        assert r.status == 200, await r.text()


async def test_resume_with_last_event_id_loses_and_repeats_nothing(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    await publish_many(http, fleet.urls[0], topic, 0, 12)
    url = f"{fleet.urls[1]}/v1/subscribe/{ref(topic)}?from=earliest"
    first = await open_sse(http, url)
    seen = [e for e in await first.events(5)]
    first.close()

    await publish_many(http, fleet.urls[0], topic, 12, 8)
    # Resume on the other worker: the cursor is all a client needs.
    second = await open_sse(
        http,
        f"{fleet.urls[0]}/v1/subscribe/{ref(topic)}?from=latest",
        headers={"Last-Event-ID": seen[-1].id or ""},
    )
    rest = await second.events(15)
    second.close()

    numbers = [e.json["payload"]["n"] for e in seen + rest]
    assert sorted(numbers) == list(range(20))  # every record exactly once
    # Per key (one partition each) the order is the publish order.
    for key in {f"k{n}" for n in range(5)}:
        of_key = [e.json["payload"]["n"] for e in seen + rest if e.json["key"] == key]
        assert of_key == sorted(of_key)


async def test_from_latest_skips_history_and_from_timestamp_starts_there(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    await publish_many(http, fleet.urls[0], topic, 0, 3)
    await asyncio.sleep(0.05)
    mark = int(time.time() * 1000)
    await asyncio.sleep(0.05)
    await publish_many(http, fleet.urls[0], topic, 3, 2)

    latest = await open_sse(http, f"{fleet.urls[1]}/v1/subscribe/{ref(topic)}?from=latest")
    await publish_many(http, fleet.urls[0], topic, 5, 1)
    assert (await latest.next_event()).json["payload"]["n"] == 5
    latest.close()

    since = await open_sse(http, f"{fleet.urls[1]}/v1/subscribe/{ref(topic)}?from={mark}")
    got = sorted(e.json["payload"]["n"] for e in await since.events(3))
    since.close()
    assert got == [3, 4, 5]


async def test_idle_stream_sends_keepalives(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    sse = await open_sse(http, f"{fleet.urls[0]}/v1/subscribe/{ref(topic)}")
    try:
        with pytest.raises(asyncio.TimeoutError):
            await sse.next_event(timeout=2.5)  # AGENTBUS_SSE_KEEPALIVE=1 in the test fleet
        assert "keep-alive" in sse.comments
    finally:
        sse.close()


async def sse_clients(http: aiohttp.ClientSession, url: str) -> float:
    return await metric_value(http, url, "agentbus_sse_clients")


async def test_disconnect_leaves_nothing_behind(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[1]
    baseline = await sse_clients(http, url)
    streams = [await open_sse(http, f"{url}/v1/subscribe/{ref(topic)}") for _ in range(3)]
    assert await sse_clients(http, url) == baseline + 3
    for s in streams:
        s.close()
    deadline = time.monotonic() + 10
    while await sse_clients(http, url) != baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await sse_clients(http, url) == baseline


async def subscribe_500s(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(f"{url}/metrics") as r:
        text = await r.text()
    route = re.escape('route="/v1/subscribe/{namespace}/{tenant}/{name}",status="500"')
    return sum(
        float(m.group(1))
        for m in re.finditer(rf"^agentbus_http_requests_total{{.*{route}}} (\S+)$", text, re.M)
    )


async def stalled_reader(url: str, path: str, key: str) -> socket.socket:
    """A raw SSE reader with a tiny receive window that reads only up to its first comment:
    past that, the worker's writes to it wait for its socket to drain."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").split(":")
    await loop.sock_connect(sock, (host, int(port)))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b": subscribed" not in head:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1024), 10)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


async def test_a_reader_that_vanishes_mid_backlog_is_a_normal_end(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    # 3 MB of backlog: far more than the socket of a reader that reads nothing takes, so
    # the worker is waiting for it to drain when the reader resets the connection.
    payload = {"pad": "x" * 16_000}
    for start in range(0, 200, 50):
        records = [{"topic": ref(topic), "payload": payload} for _ in range(start, start + 50)]
        async with http.post(f"{fleet.urls[0]}/v1/publish/batch", json={"records": records}) as r:
            assert r.status == 200, await r.text()
    url = fleet.urls[1]
    clients, errors = await sse_clients(http, url), await subscribe_500s(http, url)
    sock = await stalled_reader(url, f"/v1/subscribe/{ref(topic)}?from=earliest", fleet.admin_key)
    await asyncio.sleep(1.5)  # the worker fetches the backlog and blocks writing it
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # an RST: the client vanished
    deadline = time.monotonic() + 10
    while await sse_clients(http, url) != clients and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await sse_clients(http, url) == clients
    assert await subscribe_500s(http, url) == errors


@pytest.mark.parametrize(
    ("query", "headers", "status", "code"),
    [
        ("?from=yesterday", {}, 400, "invalid_parameter"),
        ("", {"Last-Event-ID": "garbage"}, 400, "invalid_parameter"),
        ("", {"Last-Event-ID": "0:-4"}, 400, "invalid_parameter"),
    ],
)
async def test_bad_start_positions_are_400(
    fleet: Fleet,
    topic: dict[str, Any],
    http: aiohttp.ClientSession,
    query: str,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    async with http.get(f"{fleet.urls[0]}/v1/subscribe/{ref(topic)}{query}", headers=headers) as r:
        assert r.status == status
        assert (await r.json())["error"]["code"] == code


async def test_subscribe_to_unknown_topic_is_404(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{fleet.urls[0]}/v1/subscribe/it/acme/nothing-here") as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "topic_not_found"
