"""SSE subscribe: start positions, exact resume, keep-alives and clean disconnects."""

from __future__ import annotations

import asyncio
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
