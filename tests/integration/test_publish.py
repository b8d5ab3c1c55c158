"""Publish: acknowledged records land on Kafka; rejected requests land nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import end_offsets, open_sse, unique

pytestmark = pytest.mark.integration


def ref(topic: dict[str, Any]) -> str:
    return f"{topic['namespace']}/{topic['tenant']}/{topic['name']}"


async def total_records(fleet: Fleet, topic: dict[str, Any]) -> int:
    return sum((await end_offsets(fleet.bootstrap, topic["kafka_topic"])).values())


async def test_publish_on_one_worker_arrives_over_sse_on_the_other(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    sse = await open_sse(http, f"{fleet.urls[1]}/v1/subscribe/{ref(topic)}?from=latest")
    try:
        before = int(time.time() * 1000)
        body = {
            "topic": ref(topic),
            "key": "order-1",
            "payload": {"total": 42},
            "headers": {"trace": "abc"},
            "message_id": "m-1",
        }
        async with http.post(f"{fleet.urls[0]}/v1/publish", json=body) as r:
            assert r.status == 200, await r.text()
            receipt = await r.json()
        assert receipt["message_id"] == "m-1" and receipt["topic"] == ref(topic)
        assert receipt["timestamp"] >= before - 1000

        event = await sse.next_event()
        record = event.json
        assert event.event == "record"
        assert (record["partition"], record["offset"]) == (receipt["partition"], receipt["offset"])
        assert record["payload"] == {"total": 42} and record["key"] == "order-1"
        assert record["headers"]["trace"] == "abc"
        assert record["headers"]["bus.message_id"] == "m-1"
        assert record["headers"]["bus.tenant"] == "acme"
        assert record["headers"]["bus.namespace"] == "it"
        assert record["headers"]["bus.content_type"] == "application/json"
        assert int(record["headers"]["bus.published_at"]) >= before - 1000
    finally:
        sse.close()


async def test_batch_keeps_order_per_key_and_answers_per_record(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    records = [{"topic": ref(topic), "key": "same", "payload": {"n": n}} for n in range(20)]
    async with http.post(f"{fleet.urls[1]}/v1/publish/batch", json={"records": records}) as r:
        assert r.status == 200, await r.text()
        results = (await r.json())["results"]
    assert len(results) == 20
    assert len({x["partition"] for x in results}) == 1
    offsets = [x["offset"] for x in results]
    assert offsets == sorted(offsets) and len(set(offsets)) == 20
    assert len({x["message_id"] for x in results}) == 20
    assert await total_records(fleet, topic) == 20


async def test_text_payload_travels_as_is(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    sse = await open_sse(http, f"{fleet.urls[0]}/v1/subscribe/{ref(topic)}?from=earliest")
    try:
        body = {"topic": ref(topic), "payload": "plain words", "content_type": "text/plain"}
        async with http.post(f"{fleet.urls[0]}/v1/publish", json=body) as r:
            assert r.status == 200
        record = (await sse.next_event()).json
        assert record["payload"] == "plain words" and record["content_type"] == "text/plain"
    finally:
        sse.close()


def bad_publishes(topic_ref: str) -> list[tuple[str, Any, int, str]]:
    """(path, body, status, code): every kind of bad input the publish edge refuses."""
    ok = {"topic": topic_ref, "payload": {"a": 1}}
    return [
        ("/v1/publish", b'{"topic": ', 400, "invalid_json"),
        ("/v1/publish", b"[1, 2", 400, "invalid_json"),
        ("/v1/publish", {"topic": 5, "payload": 1}, 422, "invalid_request"),
        ("/v1/publish", {"payload": 1}, 422, "invalid_request"),
        ("/v1/publish", {**ok, "headers": {"x": 1}}, 422, "invalid_request"),
        ("/v1/publish", {**ok, "unknown_field": 1}, 422, "invalid_request"),
        ("/v1/publish", {**ok, "topic": "it/acme/does-not-exist"}, 404, "topic_not_found"),
        ("/v1/publish", {**ok, "headers": {"bus.tenant": "other"}}, 400, "reserved_header"),
        ("/v1/publish", {**ok, "headers": {"BUS.message_id": "x"}}, 400, "reserved_header"),
        ("/v1/publish", {**ok, "headers": {"": "x"}}, 422, "invalid_request"),
        ("/v1/publish", {**ok, "payload": "x" * 70_000}, 413, "payload_too_large"),
        ("/v1/publish/batch", {"records": [ok] * 51}, 413, "batch_too_large"),
        ("/v1/publish/batch", {"records": []}, 422, "invalid_request"),
        ("/v1/publish/batch", {"records": [ok, {**ok, "headers": {"bus.x": "1"}}]}, 400, "reserved_header"),
        ("/v1/publish/batch", {"records": [ok, {**ok, "topic": "it/acme/nope"}]}, 404, "topic_not_found"),
        ("/v1/publish/batch", {"records": [ok, {**ok, "payload": "y" * 70_000}]}, 413, "payload_too_large"),
        ("/v1/publish", {**ok, "payload": "z" * 1_100_000}, 413, "request_too_large"),
        ("/v1/publish", f'{{"topic": "{topic_ref}", "payload": NaN}}'.encode(), 400, "invalid_json"),
        (
            "/v1/publish",
            f'{{"topic": "{topic_ref}", "payload": {{"x": [Infinity]}}}}'.encode(),
            400,
            "invalid_json",
        ),
        ("/v1/publish", f'{{"topic": "{topic_ref}", "payload": 1e400}}'.encode(), 400, "invalid_json"),
        (
            "/v1/publish/batch",
            f'{{"records": [{{"topic": "{topic_ref}", "payload": -Infinity}}]}}'.encode(),
            400,
            "invalid_json",
        ),
    ]


async def test_every_bad_publish_gets_its_4xx_and_writes_nothing(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    for path, body, status, code in bad_publishes(ref(topic)):
        kwargs: dict[str, Any] = (
            {"data": body, "headers": {"Content-Type": "application/json"}}
            if isinstance(body, bytes)
            else {"json": body}
        )
        async with http.post(f"{fleet.urls[0]}{path}", **kwargs) as r:
            answer = await r.json()
            assert (r.status, answer["error"]["code"]) == (status, code), (path, answer)
            assert set(answer["error"]) == {"code", "message", "details"}
            assert "Traceback" not in await r.text()
    await asyncio.sleep(0.5)  # anything wrongly produced would be acknowledged by now
    assert await total_records(fleet, topic) == 0


async def test_batch_failure_names_the_failing_record(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    ok = {"topic": ref(topic), "payload": 1}
    body = {"records": [ok, ok, {**ok, "headers": {"bus.tenant": "x"}}]}
    async with http.post(f"{fleet.urls[0]}/v1/publish/batch", json=body) as r:
        assert r.status == 400
        assert (await r.json())["error"]["details"]["index"] == 2


async def test_single_and_batch_put_a_key_on_the_same_partition(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{fleet.urls[0]}/v1/publish", json={"topic": ref(topic), "key": "k-x", "payload": 0}
    ) as r:
        single = await r.json()
    records = [{"topic": ref(topic), "key": f"k-{n}", "payload": n} for n in range(30)] + [
        {"topic": ref(topic), "key": "k-x", "payload": "again"}
    ]
    async with http.post(f"{fleet.urls[1]}/v1/publish/batch", json={"records": records}) as r:
        results = (await r.json())["results"]
    assert results[-1]["partition"] == single["partition"]
    assert results[-1]["offset"] > single["offset"]
    per_partition: dict[int, list[int]] = {}
    for receipt in results:
        per_partition.setdefault(receipt["partition"], []).append(receipt["offset"])
    for offsets in per_partition.values():  # contiguous and in request order within a partition
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert await total_records(fleet, topic) == 32


async def test_a_retried_publish_answers_the_first_receipt_and_writes_nothing(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    """A client that lost the answer retries with the same message id, on either worker:
    it gets the first receipt, and the topic holds the record once; another id is
    another record."""
    body = {"topic": ref(topic), "payload": {"n": 1}, "message_id": "order-7"}
    receipts = []
    for url in [*fleet.urls, *fleet.urls]:
        async with http.post(f"{url}/v1/publish", json=body) as r:
            assert r.status == 200, await r.text()
            receipts.append(await r.json())
    assert all(receipt == receipts[0] for receipt in receipts), receipts
    async with http.post(f"{fleet.urls[0]}/v1/publish", json={**body, "message_id": "order-8"}) as r:
        assert r.status == 200
        other = await r.json()
    assert (other["partition"], other["offset"]) != (receipts[0]["partition"], receipts[0]["offset"])
    ids = [record["headers"]["bus.message_id"] for record in await read_all(http, fleet, topic, 2)]
    assert sorted(ids) == ["order-7", "order-8"]


async def test_a_publish_cut_off_mid_flight_and_retried_is_written_once(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    """The first attempts hang up before their answer (the client times out at once);
    the retry that gets an answer is the only record."""
    body = {"topic": ref(topic), "payload": {"n": 2}, "message_id": "cut-1"}
    for url in fleet.urls:
        try:
            async with http.post(f"{url}/v1/publish", json=body, timeout=aiohttp.ClientTimeout(total=0.001)):
                pass
        except TimeoutError:
            pass  # cut off: the worker may or may not have written it by now
    await asyncio.sleep(0.5)
    async with http.post(f"{fleet.urls[1]}/v1/publish", json=body) as r:
        assert r.status == 200, await r.text()
        receipt = await r.json()
    records = await read_all(http, fleet, topic, 1)
    assert [(r["partition"], r["offset"]) for r in records] == [(receipt["partition"], receipt["offset"])]


async def read_all(
    http: aiohttp.ClientSession, fleet: Fleet, topic: dict[str, Any], expected: int
) -> list[dict[str, Any]]:
    """Every record of the topic from the start (waiting a moment for more than expected)."""
    sse = await open_sse(http, f"{fleet.urls[0]}/v1/subscribe/{ref(topic)}?from=earliest")
    try:
        found = [e.json for e in await sse.events(expected, timeout=10)]
        try:
            found += [e.json for e in await sse.events(1, timeout=1.5)]
        except TimeoutError:
            pass
        return found
    finally:
        sse.close()


def batch_with_ids(topic: dict[str, Any], tag: str, count: int) -> list[dict[str, Any]]:
    """count records with ids of their own (ids are per tenant, and every test's topic is
    under one), spread over the publish-ids owners; every third one keyed "same" so that
    their order shows."""
    tag = unique(tag)
    return [
        {
            "topic": ref(topic),
            "payload": {"n": n},
            "message_id": f"{tag}-{n}",
            **({"key": "same"} if n % 3 == 0 else {}),
        }
        for n in range(count)
    ]


async def post_batch(
    http: aiohttp.ClientSession, url: str, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    async with http.post(f"{url}/v1/publish/batch", json={"records": records}) as r:
        assert r.status == 200, await r.text()
        results: list[dict[str, Any]] = (await r.json())["results"]
    return results


def places(records: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    return {r["headers"]["bus.message_id"]: (r["partition"], r["offset"]) for r in records}


async def test_a_batch_published_again_on_either_worker_answers_its_first_receipts_and_writes_nothing(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    records = batch_with_ids(topic, "b", 24)
    answers = [await post_batch(http, url, records) for url in [*fleet.urls, *fleet.urls]]
    assert all(answer == answers[0] for answer in answers), answers
    first = answers[0]
    assert [x["message_id"] for x in first] == [r["message_id"] for r in records]
    written = await read_all(http, fleet, topic, 24)
    assert len(written) == 24
    assert places(written) == {x["message_id"]: (x["partition"], x["offset"]) for x in first}
    same = [x["offset"] for n, x in enumerate(first) if n % 3 == 0]
    assert same == sorted(same)  # one key's records in request order, whichever owners decided them


async def test_a_batch_cut_off_mid_flight_and_retried_is_written_once(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    records = batch_with_ids(topic, "cut", 24)
    for url in fleet.urls:
        try:
            async with http.post(
                f"{url}/v1/publish/batch",
                json={"records": records},
                timeout=aiohttp.ClientTimeout(total=0.005),
            ):
                pass
        except TimeoutError:
            pass  # cut off: some owners may have written their records by now, others not
    await asyncio.sleep(0.5)
    receipts = await post_batch(http, fleet.urls[1], records)
    written = await read_all(http, fleet, topic, 24)
    assert sorted(r["headers"]["bus.message_id"] for r in written) == sorted(r["message_id"] for r in records)
    assert places(written) == {x["message_id"]: (x["partition"], x["offset"]) for x in receipts}


async def test_a_batch_mixing_ids_and_no_ids_writes_the_ids_once_and_the_rest_each_time(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    tag = unique("mix")
    with_id: list[dict[str, Any]] = [
        {"topic": ref(topic), "payload": n, "message_id": f"{tag}-{n}"} for n in range(3)
    ]
    without: dict[str, Any] = {"topic": ref(topic), "payload": "no id"}
    records = [with_id[0], without, with_id[1], without, with_id[2], with_id[0]]  # mix-0 twice
    first = await post_batch(http, fleet.urls[0], records)
    again = await post_batch(http, fleet.urls[1], records)
    assert first[5] == first[0]  # a repeated id within one batch is one record
    for n in (0, 2, 4, 5):
        assert again[n] == first[n]
    for n in (1, 3):
        assert again[n]["message_id"] != first[n]["message_id"]
        assert (again[n]["partition"], again[n]["offset"]) != (first[n]["partition"], first[n]["offset"])
    written = await read_all(http, fleet, topic, 7)
    ids = [r["headers"]["bus.message_id"] for r in written]
    assert sorted(i for i in ids if i.startswith(tag)) == [f"{tag}-{n}" for n in range(3)]
    assert len(written) == 3 + 4  # the ids once, the records without one in each of the two batches


async def test_a_batch_repeating_an_id_a_single_publish_wrote_answers_that_receipt_as_it_is(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    """Ids are per tenant: the batch's record names another topic of the tenant, and its
    answer is the first record's receipt, topic included; nothing is written again."""
    other: dict[str, Any] = {"namespace": "it", "tenant": "acme", "name": unique("t"), "partitions": 1}
    async with http.post(f"{fleet.urls[0]}/v1/topics", json=other) as r:
        assert r.status == 201, await r.text()
        other = await r.json()
    message_id = unique("once")
    single = {"topic": ref(topic), "payload": 1, "message_id": message_id}
    async with http.post(f"{fleet.urls[0]}/v1/publish", json=single) as r:
        assert r.status == 200, await r.text()
        first = await r.json()
    [answer] = await post_batch(http, fleet.urls[1], [{**single, "topic": ref(other)}])
    assert answer == first
    assert await total_records(fleet, other) == 0
