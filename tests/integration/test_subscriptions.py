"""Subscriptions on the real broker and the two-worker fleet: delivery, ack, redelivery,
dead letters, lag, seek and redrive."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import open_sse
from tests.subs import ack, call, drain, new_subscription, new_topic, ok, positions, publish, pull

pytestmark = pytest.mark.integration


async def test_competing_consumers_on_both_workers_split_the_stream_once(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    topic = await new_topic(http, url0, partitions=3)
    await publish(http, url0, topic, list(range(300)))
    sub = await new_subscription(http, url0, topic)

    async def consumer(url: str) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        for _ in range(200):
            batch = await pull(http, url, sub, max_records=7, wait_ms=300)
            if not batch and len(got) and await total_acked(http, url, sub) == 300:
                break
            await ack(http, url, sub, batch)
            got += batch
            await asyncio.sleep(0)
        return got

    first, second = await asyncio.gather(consumer(url0), consumer(url1))
    assert first and second, "both competing consumers get records"
    everything = positions(first) + positions(second)
    assert len(everything) == 300 and len(set(everything)) == 300
    assert sorted(d["payload"] for d in first + second) == list(range(300))
    assert all(d["delivery_count"] == 1 for d in first + second)


async def total_acked(http: aiohttp.ClientSession, url: str, sub: str) -> int:
    lag = await ok(http, "GET", f"{url}{sub}/lag")
    return int(sum(p["committed"] + p["acked_ahead"] for p in lag["partitions"]))


async def test_an_unacked_record_comes_back_after_its_deadline_with_a_higher_count(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    topic = await new_topic(http, url)
    sub = await new_subscription(http, url, topic, ack_deadline_ms=1000, redelivery_backoff_ms=0)
    await publish(http, url, topic, ["once"])
    [first] = await pull(http, url, sub, wait_ms=5000)
    assert first["delivery_count"] == 1 and first["payload"] == "once"
    assert await pull(http, url, sub, wait_ms=300) == [], "leased: nobody else gets it meanwhile"
    [again] = await pull(http, url, sub, wait_ms=5000)
    assert (again["offset"], again["delivery_count"]) == (first["offset"], 2)
    assert again["delivery_id"] != first["delivery_id"]

    status, body = await call(http, "POST", f"{url}{sub}/ack", {"delivery_ids": [first["delivery_id"]]})
    assert status == 409 and body["error"]["code"] == "delivery_superseded"
    await ack(http, fleet.urls[1], sub, [again])  # through the other worker
    lag = await ok(http, "GET", f"{url}{sub}/lag")
    assert lag["total_lag"] == 0 and lag["in_flight"] == 0


async def test_a_late_ack_before_the_redelivery_still_counts(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[1]
    topic = await new_topic(http, url)
    sub = await new_subscription(http, url, topic, ack_deadline_ms=500, redelivery_backoff_ms=60_000)
    await publish(http, url, topic, ["slow"])
    [first] = await pull(http, url, sub, wait_ms=5000)
    await asyncio.sleep(1.0)  # the lease ended; the redelivery waits for its backoff
    await ack(http, url, sub, [first])
    assert await pull(http, url, sub, wait_ms=500) == []
    assert (await ok(http, "GET", f"{url}{sub}/lag"))["total_lag"] == 0


async def test_after_max_deliveries_the_record_is_dead_lettered_with_its_origin(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    topic = await new_topic(http, url)
    sub = await new_subscription(
        http, url, topic, ack_deadline_ms=500, max_deliveries=2, redelivery_backoff_ms=100
    )
    await publish(http, url, topic, [{"n": 1}], key="k1", headers={"trace": "abc"})
    counts = [d["delivery_count"] for d in await pull(http, url, sub, wait_ms=5000)]
    counts += [d["delivery_count"] for d in await pull(http, url, sub, wait_ms=5000)]
    assert counts == [1, 2]
    letters = await wait_for_dead_letters(http, url, sub, 1)
    [letter] = letters
    origin, record = letter["origin"], letter["record"]
    assert origin["topic"] == f"it/acme/{topic}" and origin["offset"] == 0 and origin["partition"] == 0
    assert origin["subscription"] == sub.removeprefix("/v1/subscriptions/")
    assert origin["delivery_count"] == 2 and "max_deliveries" in origin["reason"]
    assert origin["first_delivery_at"] <= origin["last_delivery_at"]
    assert record["payload"] == {"n": 1} and record["key"] == "k1" and record["headers"]["trace"] == "abc"
    assert record["headers"]["bus.dlq.offset"] == "0"
    assert not letter["redriven"]
    assert await pull(http, url, sub, wait_ms=800) == [], "a dead letter is not delivered again"
    assert (await ok(http, "GET", f"{url}{sub}/lag"))["total_lag"] == 0


async def wait_for_dead_letters(
    http: aiohttp.ClientSession, url: str, sub: str, count: int, timeout: float = 20.0
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found: list[dict[str, Any]] = (await ok(http, "GET", f"{url}{sub}/dead-letters"))["dead_letters"]
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_nack_redelivers_or_dead_letters_and_redrive_sends_each_back_once(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    topic = await new_topic(http, url0)
    sub = await new_subscription(http, url0, topic, redelivery_backoff_ms=0)
    await publish(http, url0, topic, ["a", "b", "c"])
    batch = await pull(http, url0, sub, wait_ms=5000, max_records=3)
    assert [d["payload"] for d in batch] == ["a", "b", "c"]
    a, b, c = batch
    nacked = await ok(
        http, "POST", f"{url1}{sub}/nack", {"delivery_ids": [a["delivery_id"]], "reason": "retry me"}
    )
    assert nacked == {"nacked": 1, "dead_lettered": 0}
    [again] = await pull(http, url0, sub, wait_ms=5000)
    assert (again["payload"], again["delivery_count"]) == ("a", 2)
    body = {"delivery_ids": [b["delivery_id"], c["delivery_id"]], "action": "dead_letter", "reason": "poison"}
    assert (await ok(http, "POST", f"{url0}{sub}/nack", body))["dead_lettered"] == 2
    await ack(http, url0, sub, [again])

    letters = await wait_for_dead_letters(http, url1, sub, 2)
    assert [(x["record"]["payload"], x["origin"]["reason"]) for x in letters] == [
        ("b", "poison"),
        ("c", "poison"),
    ]
    first_id, second_id = (x["dead_letter_id"] for x in letters)

    done = await ok(http, "POST", f"{url1}{sub}/dead-letters/redrive", {"dead_letter_ids": [first_id]})
    assert done == {"redriven": [first_id], "skipped": []}
    [back] = await pull(http, url0, sub, wait_ms=5000)
    assert back["payload"] == "b" and back["delivery_count"] == 1
    assert back["headers"]["bus.redriven_from"].endswith(f"@{first_id}")
    await ack(http, url0, sub, [back])

    done = await ok(http, "POST", f"{url0}{sub}/dead-letters/redrive", {"all": True})
    assert done == {"redriven": [second_id], "skipped": [first_id]}
    [last] = await pull(http, url0, sub, wait_ms=5000)
    assert last["payload"] == "c"
    await ack(http, url0, sub, [last])
    assert await pull(http, url0, sub, wait_ms=800) == [], "each dead letter came back once"
    flags = {x["dead_letter_id"]: x["redriven"] for x in await wait_for_dead_letters(http, url0, sub, 2)}
    assert flags == {first_id: True, second_id: True}

    status, error = await call(
        http, "POST", f"{url0}{sub}/dead-letters/redrive", {"dead_letter_ids": ["0:999"]}
    )
    assert status == 404 and error["error"]["code"] == "dead_letter_not_found"


async def test_lag_is_published_minus_acked(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url = fleet.urls[0]
    topic = await new_topic(http, url)
    sub = await new_subscription(http, url, topic)
    await publish(http, url, topic, list(range(10)))
    batch = await pull(http, url, sub, max_records=10, wait_ms=5000)
    assert len(batch) == 10
    await ack(http, fleet.urls[1], sub, batch[:4] + batch[6:8])
    lag = await ok(http, "GET", f"{fleet.urls[1]}{sub}/lag")
    [part] = lag["partitions"]
    assert (part["committed"], part["high_watermark"], part["lag"], part["acked_ahead"]) == (4, 10, 6, 2)
    assert (lag["total_lag"], lag["unacked"], lag["in_flight"]) == (6, 4, 4)
    assert lag["oldest_unacked_age_ms"] is not None and lag["oldest_unacked_age_ms"] >= 0


async def test_seek_replays_from_the_chosen_position_and_stales_old_deliveries(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    topic = await new_topic(http, url, partitions=2)
    sub = await new_subscription(http, url, topic)
    await publish(http, url, topic, list(range(6)))
    first = await drain(http, url, sub, 6)
    held = await pull(http, url, sub, wait_ms=200)
    assert len(first) == 6 and held == []

    committed = (await ok(http, "POST", f"{fleet.urls[1]}{sub}/seek", {"position": "earliest"}))["committed"]
    assert committed == {"0": 0, "1": 0}
    replay = await drain(http, url, sub, 6)
    assert sorted(positions(replay)) == sorted(positions(first))
    status, body = await call(http, "POST", f"{url}{sub}/ack", {"delivery_ids": [first[0]["delivery_id"]]})
    assert status == 409 and body["error"]["code"] == "delivery_stale"

    target = {str(p): o for p, o in sorted(positions(first))[-1:]}  # replay the very last record
    await ok(http, "POST", f"{url}{sub}/seek", {"offsets": target})
    again = await pull(http, url, sub, wait_ms=3000)
    assert positions(again) == sorted(positions(first))[-1:]

    await ok(http, "POST", f"{url}{sub}/seek", {"position": "latest"})
    assert await pull(http, url, sub, wait_ms=300) == []
    assert (await ok(http, "GET", f"{url}{sub}/lag"))["total_lag"] == 0


async def test_auto_mode_delivers_at_most_once_without_acks(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[1]
    topic = await new_topic(http, url)
    sub = await new_subscription(http, url, topic, ack_mode="auto", ack_deadline_ms=500)
    await publish(http, url, topic, list(range(5)))
    got = await pull(http, url, sub, wait_ms=5000)
    while len(got) < 5:
        got += await pull(http, url, sub, wait_ms=2000)
    await asyncio.sleep(1.0)
    assert await pull(http, url, sub, wait_ms=300) == [], "nothing comes back unacked in auto mode"
    assert (await ok(http, "GET", f"{url}{sub}/lag"))["total_lag"] == 0


async def test_the_header_filter_delivers_only_matching_records(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url = fleet.urls[0]
    topic = await new_topic(http, url)
    sub = await new_subscription(http, url, topic, filter={"headers": {"kind": "wanted"}})
    await publish(http, url, topic, [1, 2], headers={"kind": "other"})
    await publish(http, url, topic, [3], headers={"kind": "wanted"})
    got = await drain(http, url, sub, 1)
    assert [d["payload"] for d in got] == [3]
    assert (await ok(http, "GET", f"{url}{sub}/lag"))["total_lag"] == 0


async def test_sse_delivers_and_a_disconnect_gives_the_leases_back(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    topic = await new_topic(http, url0)
    sub = await new_subscription(http, url0, topic, redelivery_backoff_ms=0)
    await publish(http, url0, topic, ["x", "y"])
    for url in (url0, url1):  # one of them is the owner, the other pulls from it
        stream = await open_sse(http, f"{url}{sub}/events")
        events = await stream.events(2)
        stream.close()
        assert [e.event for e in events] == ["delivery", "delivery"]
        assert [e.json["payload"] for e in events] == ["x", "y"]
        assert events[0].id == events[0].json["delivery_id"]
    got = await drain(http, url0, sub, 2, timeout=15)
    assert [d["payload"] for d in got] == ["x", "y"] and all(d["delivery_count"] == 3 for d in got)


async def test_bad_input_is_refused_with_clear_codes(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    url = fleet.urls[0]
    status, body = await call(http, "POST", f"{url}/v1/subscriptions/it/acme/nope/pull", {})
    assert status == 404 and body["error"]["code"] == "subscription_not_found"
    topic = await new_topic(http, url)
    sub = await new_subscription(http, url, topic)
    other = await new_subscription(http, url, topic)
    await publish(http, url, topic, ["z"])
    [mine] = await pull(http, url, sub, wait_ms=5000)
    [theirs] = await pull(http, url, other, wait_ms=5000)

    for wrong in ([theirs["delivery_id"]], ["garbage"], [mine["delivery_id"].rsplit(".", 2)[0] + ".7.1"]):
        status, body = await call(http, "POST", f"{url}{sub}/ack", {"delivery_ids": wrong})
        assert status == 404 and body["error"]["code"] == "delivery_not_found", body
    status, body = await call(
        http, "POST", f"{url}{sub}/ack", {"delivery_ids": [mine["delivery_id"], "garbage"]}
    )
    assert status == 404 and body["error"]["details"]["failed"] == [
        {"delivery_id": "garbage", "code": "delivery_not_found"}
    ]
    lag = await ok(http, "GET", f"{url}{sub}/lag")
    assert lag["in_flight"] == 1, "a refused ack settles none of its ids"

    for path, payload in [
        ("/ack", {"delivery_ids": []}),
        ("/nack", {"delivery_ids": ["x"], "action": "drop"}),
        ("/pull", {"max_records": 0}),
        ("/pull", {"wait_ms": 60_000}),
        ("/seek", {}),
        ("/seek", {"position": "earliest", "timestamp_ms": 5}),
        ("/dead-letters/redrive", {}),
    ]:
        status, body = await call(http, "POST", f"{url}{sub}{path}", payload)
        assert status == 422 and body["error"]["code"] == "invalid_request", (path, body)
    status, body = await call(http, "POST", f"{url}{sub}/seek", {"offsets": {"9": 0}})
    assert status == 400 and body["error"]["code"] == "invalid_parameter"
    status, body = await call(http, "POST", f"{url}{sub}/seek", {"offsets": {"٣": 0}})
    assert status == 400 and body["error"]["code"] == "invalid_parameter"
    lag_before = (await call(http, "GET", f"{url}{sub}/lag", None))[1]
    status, body = await call(http, "POST", f"{url}{sub}/seek", {"offsets": {"0": 10**12}})
    assert status == 422 and body["error"]["details"]["offset"] == 10**12, body  # past the end: refused
    lag_after = (await call(http, "GET", f"{url}{sub}/lag", None))[1]
    assert [p["high_watermark"] for p in lag_after["partitions"]] == [
        p["high_watermark"] for p in lag_before["partitions"]
    ]
    status, body = await call(http, "GET", f"{url}{sub}/dead-letters?limit=0")
    assert status == 400 and body["error"]["code"] == "invalid_parameter"


async def test_deleting_a_subscription_ends_its_open_streams(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    url0, url1 = fleet.urls
    topic = await new_topic(http, url0)
    sub = await new_subscription(http, url0, topic)
    streams = [await open_sse(http, f"{url}{sub}/events") for url in (url0, url1)]
    await ok(http, "DELETE", f"{url0}{sub}")
    for stream in streams:
        event = await stream.next_event(timeout=15)
        assert event.event == "error" and event.json["error"]["code"] == "subscription_not_found"
        stream.close()
    status, body = await call(http, "GET", f"{url1}{sub}/lag")
    assert status == 404 and body["error"]["code"] == "subscription_not_found"
