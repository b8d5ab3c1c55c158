"""Token streams: chunks in order whatever order they were written in, gaps reported,
late joiners served from the first chunk, cancellation seen by the producer, coalescing."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from tests.fleet import Fleet
from tests.helpers import SseEvent, open_sse, unique
from tests.subs import call, ok

pytestmark = pytest.mark.integration


async def new_conversation(http: aiohttp.ClientSession, url: str) -> tuple[str, str]:
    conv_id = unique("sc")
    await ok(
        http, "POST", f"{url}/v1/conversations", {"namespace": "it", "tenant": "acme", "id": conv_id}, 201
    )
    return conv_id, f"/v1/conversations/it/acme/{conv_id}"


async def read_all(http: aiohttp.ClientSession, url: str, timeout: float = 20) -> list[SseEvent]:
    """Every event of a stream until its end event."""
    stream = await open_sse(http, url)
    events: list[SseEvent] = []
    try:
        while not events or events[-1].event != "end":
            events.append(await stream.next_event(timeout=timeout))
    finally:
        stream.close()
    return events


async def test_chunks_arrive_in_order_once_then_the_end(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    conv_id, conv = await new_conversation(http, url0)
    sid = unique("s")
    reader = asyncio.create_task(read_all(http, f"{url1}/v1/streams/it/acme/{conv_id}/{sid}"))
    await asyncio.sleep(0.5)  # the reader joins before the first chunk
    writes: list[dict[str, Any]] = [
        {"stream_id": sid, "chunks": [{"chunk_seq": 2, "data": "c"}, {"chunk_seq": 0, "data": "a"}]},
        {"stream_id": sid, "chunk_seq": 1, "data": "b"},
        {"stream_id": sid, "chunk_seq": 0, "data": "a"},  # twice
        {"stream_id": sid, "chunks": [{"chunk_seq": 4, "data": "e"}, {"chunk_seq": 3, "data": "d"}]},
    ]
    for i, body in enumerate(writes):
        receipt = await ok(http, "POST", f"{fleet.urls[i % 2]}{conv}/stream-chunks", body)
        assert receipt["accepted"] == len(body.get("chunks", [1])) and not receipt["cancelled"]
    end = {
        "stream_id": sid,
        "status": "complete",
        "last_chunk_seq": 4,
        "usage": {"output_tokens": 5, "cost": 0.25},
    }
    ended = await ok(http, "POST", f"{url1}{conv}/stream-end", end)
    assert ended["status"] == "complete" and ended["by"] == "producer"

    for events in (await reader, await read_all(http, f"{url0}/v1/streams/it/acme/{conv_id}/{sid}")):
        chunks = [(e.id, e.json["data"]) for e in events if e.event == "chunk"]
        assert chunks == [("0", "a"), ("1", "b"), ("2", "c"), ("3", "d"), ("4", "e")]
        assert events[-1].event == "end" and events[-1].json["usage"]["output_tokens"] == 5
        assert not [e for e in events if e.event == "gap"]

    status, body = await call(
        http, "POST", f"{url0}{conv}/stream-chunks", {"stream_id": sid, "chunk_seq": 5, "data": "f"}
    )
    assert (status, body["error"]["code"]) == (409, "stream_ended")
    thread = await ok(http, "GET", f"{url0}{conv}/messages")
    assert [m["kind"] for m in thread["messages"]] == ["stream_end"]
    assert (await ok(http, "GET", f"{url1}{conv}"))["usage"]["cost"] == 0.25


async def test_readers_joining_mid_stream_get_every_chunk_once(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    """Readers that come while the stream is being written get what was written before them
    (read from Kafka) and then what the owner hands over live, without a gap or a double."""
    conv_id, conv = await new_conversation(http, fleet.urls[0])
    sid = unique("s")
    stream_url = f"/v1/streams/it/acme/{conv_id}/{sid}"
    readers: list[asyncio.Task[list[SseEvent]]] = []
    for seq in range(60):
        if seq in (1, 17, 33, 52):  # readers on both workers, joining at different points
            readers.append(asyncio.create_task(read_all(http, fleet.urls[len(readers) % 2] + stream_url)))
        body = {"stream_id": sid, "chunk_seq": seq, "data": f"t{seq}"}
        await ok(http, "POST", f"{fleet.urls[seq % 2]}{conv}/stream-chunks", body)
    await ok(http, "POST", f"{fleet.urls[1]}{conv}/stream-end", {"stream_id": sid, "last_chunk_seq": 59})
    for events in await asyncio.gather(*readers):
        assert [e.json["chunk_seq"] for e in events if e.event == "chunk"] == list(range(60))
        assert [e.event for e in events if e.event != "chunk"] == ["end"]


async def test_a_chunk_that_never_comes_is_reported_as_a_gap(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    conv_id, conv = await new_conversation(http, url)
    sid = unique("s")
    body = {"stream_id": sid, "chunks": [{"chunk_seq": s, "data": s} for s in (0, 1, 3, 6)]}
    await ok(http, "POST", f"{url}{conv}/stream-chunks", body)
    await ok(http, "POST", f"{url}{conv}/stream-end", {"stream_id": sid, "last_chunk_seq": 7})
    events = await read_all(http, f"{fleet.urls[1]}/v1/streams/it/acme/{conv_id}/{sid}?gap_timeout_ms=300")
    shown = [(e.event, e.json.get("chunk_seq", e.json.get("from_chunk_seq"))) for e in events[:-1]]
    assert shown == [
        ("chunk", 0),
        ("chunk", 1),
        ("gap", 2),
        ("chunk", 3),
        ("gap", 4),
        ("chunk", 6),
        ("gap", 7),
    ]
    assert events[-2].json == {"from_chunk_seq": 7, "to_chunk_seq": 7}


async def test_a_chunk_after_its_gap_comes_late_once(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    conv_id, conv = await new_conversation(http, fleet.urls[0])
    sid = unique("s")
    url = f"{fleet.urls[1]}/v1/streams/it/acme/{conv_id}/{sid}?gap_timeout_ms=300"
    stream = await open_sse(http, url)
    try:
        body = {"stream_id": sid, "chunks": [{"chunk_seq": 0, "data": "a"}, {"chunk_seq": 2, "data": "c"}]}
        await ok(http, "POST", f"{fleet.urls[0]}{conv}/stream-chunks", body)
        first = await stream.events(3)
        assert [(e.event, e.id) for e in first] == [("chunk", "0"), ("gap", None), ("chunk", "2")]
        for _ in range(2):  # written twice: sent late once
            await ok(
                http,
                "POST",
                f"{fleet.urls[1]}{conv}/stream-chunks",
                {"stream_id": sid, "chunk_seq": 1, "data": "b"},
            )
        late = await stream.next_event()
        assert (late.event, late.id, late.json) == ("late", None, {"chunk_seq": 1, "data": "b"})
        await ok(http, "POST", f"{fleet.urls[0]}{conv}/stream-end", {"stream_id": sid, "last_chunk_seq": 2})
        assert (await stream.next_event()).event == "end"
    finally:
        stream.close()


async def test_a_consumer_cancels_and_the_producer_sees_it(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url0, url1 = fleet.urls
    conv_id, conv = await new_conversation(http, url0)
    sid = unique("s")
    await ok(http, "POST", f"{url0}{conv}/stream-chunks", {"stream_id": sid, "chunk_seq": 0, "data": "x"})
    cancelled = await ok(
        http, "POST", f"{url1}/v1/streams/it/acme/{conv_id}/{sid}/cancel", {"reason": "enough"}
    )
    assert (cancelled["status"], cancelled["by"], cancelled["error"]) == ("cancelled", "consumer", "enough")
    status, body = await call(
        http, "POST", f"{url1}{conv}/stream-chunks", {"stream_id": sid, "chunk_seq": 1, "data": "y"}
    )
    assert (status, body["error"]["code"]) == (409, "stream_cancelled")
    status, body = await call(http, "POST", f"{url0}{conv}/stream-end", {"stream_id": sid})
    assert (status, body["error"]["code"]) == (409, "stream_cancelled")
    events = await read_all(http, f"{url0}/v1/streams/it/acme/{conv_id}/{sid}")
    assert [e.event for e in events] == ["chunk", "end"] and events[-1].json["status"] == "cancelled"


async def test_chunks_written_together_are_coalesced_into_fewer_records(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    conv_id, conv = await new_conversation(http, url0)
    sid = unique("s")
    count = 200

    async def write(seq: int) -> None:
        await ok(
            http,
            "POST",
            f"{fleet.urls[seq % 2]}{conv}/stream-chunks",
            {"stream_id": sid, "chunk_seq": seq, "data": seq},
        )

    await asyncio.gather(*(write(seq) for seq in range(count)))
    await ok(http, "POST", f"{url1}{conv}/stream-end", {"stream_id": sid, "last_chunk_seq": count - 1})
    events = await read_all(http, f"{url0}/v1/streams/it/acme/{conv_id}/{sid}")
    assert [e.json["data"] for e in events if e.event == "chunk"] == list(range(count))
    records = await stream_records(fleet, f"it/acme/{conv_id}", sid)
    assert 0 < records < count, "concurrent chunks share records"


async def stream_records(fleet: Fleet, key: str, stream_id: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=fleet.bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(f"{fleet.prefix}-conversations", (murmur2(key.encode()) & 0x7FFFFFFF) % 12)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, 0)
        found = 0
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=500)
            found += sum(
                1
                for r in batch.get(tp, [])
                if r.key == key.encode() and ("bus.stream_id", stream_id.encode()) in list(r.headers)
            )
        return found
    finally:
        await consumer.stop()
