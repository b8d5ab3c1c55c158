"""Subscription metadata (create, get, list, delete) against the real broker and a two-worker fleet."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import end_offsets, kafka_topics, unique

pytestmark = pytest.mark.integration


def spec(topic: str, **extra: Any) -> dict[str, Any]:
    return {"namespace": "it", "tenant": "acme", "id": unique("s"), "topic": topic, **extra}


async def create(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{url}/v1/subscriptions", json=body) as r:
        assert r.status == 201, await r.text()
        created: dict[str, Any] = await r.json()
    return created


async def refused(http: aiohttp.ClientSession, url: str, body: Any, status: int, code: str) -> dict[str, Any]:
    async with http.post(f"{url}/v1/subscriptions", json=body) as r:
        assert r.status == status, await r.text()
        error: dict[str, Any] = (await r.json())["error"]
    assert error["code"] == code
    return error


async def publish_three(http: aiohttp.ClientSession, url: str, topic: dict[str, Any]) -> None:
    ref = f"it/acme/{topic['name']}"
    records = [{"topic": ref, "payload": i} for i in range(3)]
    async with http.post(f"{url}/v1/publish/batch", json={"records": records}) as r:
        assert r.status == 200, await r.text()


async def topic_status(http: aiohttp.ClientSession, url: str, name: str) -> int:
    async with http.get(f"{url}/v1/topics/it/acme/{name}") as r:
        return r.status


def offsets(sub: dict[str, Any]) -> dict[int, int]:
    return {int(p): o for p, o in sub["start_offsets"].items()}


async def test_create_fills_in_the_defaults_and_makes_the_dead_letter_topic(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    body = spec(topic["name"], labels={"team": "a"}, description="d", ack_mode="auto")
    sub = await create(http, fleet.urls[0], body)
    assert sub["namespace"] == "it" and sub["tenant"] == "acme" and sub["id"] == body["id"]
    assert sub["topic"] == topic["name"] and sub["start"] == "latest"
    assert sub["ack_mode"] == "auto" and sub["ack_deadline_ms"] == 30_000 and sub["max_deliveries"] == 5
    assert sub["labels"] == {"team": "a"} and sub["description"] == "d" and sub["filter"] is None
    assert sub["dead_letter_topic"] == f"{body['id']}-dlq"
    assert sub["consumer_group"].startswith(f"{fleet.prefix}.sub.it.acme.{body['id']}.")
    assert sub["created_at"]
    async with http.get(f"{fleet.urls[0]}/v1/topics/it/acme/{body['id']}-dlq") as r:
        assert r.status == 200
        dlq = await r.json()
    assert dlq["partitions"] == topic["partitions"]
    assert dlq["kafka_topic"] in await kafka_topics(fleet.bootstrap)


async def test_start_is_resolved_to_offsets_when_created(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    before = int(time.time() * 1000) - 60_000
    await publish_three(http, fleet.urls[0], topic)
    ends = await end_offsets(fleet.bootstrap, topic["kafka_topic"])
    assert sum(ends.values()) == 3

    latest = await create(http, fleet.urls[0], spec(topic["name"], start="latest"))
    assert offsets(latest) == ends
    earliest = await create(http, fleet.urls[1], spec(f"it/acme/{topic['name']}", start="earliest"))
    assert offsets(earliest) == {0: 0, 1: 0, 2: 0} and earliest["start"] == "earliest"
    past = await create(http, fleet.urls[0], spec(topic["name"], start=before))
    assert offsets(past) == {0: 0, 1: 0, 2: 0} and past["start"] == before
    future = await create(http, fleet.urls[0], spec(topic["name"], start=int(time.time() * 1000) + 3_600_000))
    assert offsets(future) == ends  # no record at or after the time: the end


async def test_get_through_the_other_worker(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    sub = await create(http, fleet.urls[0], spec(topic["name"]))
    async with http.get(f"{fleet.urls[1]}/v1/subscriptions/it/acme/{sub['id']}") as r:
        assert r.status == 200
        assert await r.json() == sub


async def test_list_filters_by_namespace_tenant_and_topic(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    tenant, url = unique("ten"), fleet.urls[0]
    for name in ("a", "b"):
        topic = {"namespace": "subs", "tenant": tenant, "name": name}
        async with http.post(f"{url}/v1/topics", json=topic) as r:
            assert r.status == 201
    for sub_id, name in (("x", "a"), ("y", "a"), ("z", "b")):
        await create(http, url, {"namespace": "subs", "tenant": tenant, "id": sub_id, "topic": name})

    async def listed(**params: str) -> list[str]:
        async with http.get(f"{url}/v1/subscriptions", params=params) as r:
            assert r.status == 200
            return sorted(s["id"] for s in (await r.json())["subscriptions"])

    assert await listed(namespace="subs", tenant=tenant) == ["x", "y", "z"]
    assert await listed(namespace="subs", tenant=tenant, topic="a") == ["x", "y"]
    assert await listed(tenant=tenant, topic="b") == ["z"]
    assert await listed(namespace="nope", tenant=tenant) == []


async def test_duplicate_create_is_a_conflict_on_either_worker(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    body = spec(topic["name"])
    first = await create(http, fleet.urls[0], body)
    for url in fleet.urls:
        error = await refused(http, url, body, 409, "subscription_exists")
        assert error["details"] == {"subscription": f"it/acme/{body['id']}"}
    async with http.get(f"{fleet.urls[1]}/v1/subscriptions/it/acme/{body['id']}") as r:
        assert await r.json() == first


async def test_unknown_topic_is_404_and_writes_nothing(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    body = spec(unique("missing"))
    error = await refused(http, fleet.urls[0], body, 404, "topic_not_found")
    assert error["details"] == {"topic": f"it/acme/{body['topic']}"}
    await assert_nothing_written(fleet, http, body["id"])


async def test_a_topic_of_another_tenant_is_refused(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    body = spec(f"it/globex/{topic['name']}")
    error = await refused(http, fleet.urls[0], body, 403, "tenant_forbidden")
    assert error["message"] == "cross-tenant subscriptions are refused"
    await assert_nothing_written(fleet, http, body["id"])


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"bogus": 1}, "bogus"),
        ({"id": "Bad_Id"}, "id"),
        ({"id": "x" * 49}, "id"),
        ({"ack_deadline_ms": 499}, "ack_deadline_ms"),
        ({"ack_deadline_ms": 3_600_001}, "ack_deadline_ms"),
        ({"start": "now"}, "start"),
        ({"start": -1}, "start"),
        ({"max_deliveries": 0}, "max_deliveries"),
        ({"topic": "a/b"}, "topic"),
        ({"topic": "Bad"}, "topic"),
    ],
)
async def test_bad_bodies_are_422_and_write_nothing(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any], extra: dict[str, Any], path: str
) -> None:
    body = {**spec(topic["name"]), **extra}
    error = await refused(http, fleet.urls[0], body, 422, "invalid_request")
    assert any(d["path"] == path or d["path"].startswith(f"{path}/") for d in error["details"]), error
    if "id" not in extra:  # a bad id names no dead-letter topic to look for
        await assert_nothing_written(fleet, http, body["id"])


async def test_the_source_topic_cannot_be_its_own_dead_letter_topic(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    body = spec(topic["name"], dead_letter_topic=topic["name"])
    error = await refused(http, fleet.urls[0], body, 422, "invalid_request")
    assert [d["path"] for d in error["details"]] == ["dead_letter_topic"]
    await assert_nothing_written(fleet, http, body["id"])


async def test_an_existing_dead_letter_topic_is_used_and_a_named_one_is_created(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    dead = unique("dead")
    topic_body = {"namespace": "it", "tenant": "acme", "name": dead, "partitions": 1}
    async with http.post(f"{fleet.urls[1]}/v1/topics", json=topic_body) as r:
        assert r.status == 201
    used = await create(http, fleet.urls[0], spec(topic["name"], dead_letter_topic=dead))
    assert used["dead_letter_topic"] == dead
    async with http.get(f"{fleet.urls[0]}/v1/topics/it/acme/{dead}") as r:
        assert (await r.json())["partitions"] == 1  # kept as it was
    named = unique("named")
    await create(http, fleet.urls[0], spec(topic["name"], dead_letter_topic=named))
    assert await topic_status(http, fleet.urls[1], named) == 200


async def test_delete_then_get_is_404_and_the_dead_letter_topic_stays(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    sub = await create(http, fleet.urls[0], spec(topic["name"]))
    path = f"/v1/subscriptions/it/acme/{sub['id']}"
    async with http.delete(f"{fleet.urls[1]}{path}") as r:
        assert r.status == 200
        assert await r.json() == sub
    for url in fleet.urls:  # the other worker has caught up before it answers 404
        async with http.get(f"{url}{path}") as r:
            assert r.status == 404
            error = (await r.json())["error"]
        assert error["code"] == "subscription_not_found"
        assert error["details"] == {"subscription": f"it/acme/{sub['id']}"}
    async with http.delete(f"{fleet.urls[0]}{path}") as r:
        assert r.status == 404
    assert await topic_status(http, fleet.urls[0], sub["dead_letter_topic"]) == 200


async def test_a_recreated_subscription_gets_a_new_consumer_group(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    body = spec(topic["name"])
    first = await create(http, fleet.urls[0], body)
    async with http.delete(f"{fleet.urls[0]}/v1/subscriptions/it/acme/{body['id']}") as r:
        assert r.status == 200
    second = await create(http, fleet.urls[1], body)  # the existing dead-letter topic is reused
    assert second["consumer_group"] != first["consumer_group"]
    assert second["dead_letter_topic"] == first["dead_letter_topic"]


async def test_creating_needs_manage_and_read_on_the_source_topic(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    url = fleet.urls[0]
    manage_only = await tenant_key(http, url, [{"topics": "*", "actions": ["manage"]}])
    both = await tenant_key(http, url, [{"topics": "*", "actions": ["read", "manage"]}])
    body = spec(topic["name"])
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {manage_only}"}) as s:
        async with s.post(f"{url}/v1/subscriptions", json=body) as r:
            error = (await r.json())["error"]
            assert r.status == 403 and error["code"] == "permission_missing"
            assert error["details"] == {"permission": "read"}
    await assert_nothing_written(fleet, http, body["id"])
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {both}"}) as s:
        async with s.post(f"{url}/v1/subscriptions", json=body) as r:
            assert r.status == 201


async def test_a_key_sees_only_subscriptions_of_topics_it_may_read(
    fleet: Fleet, http: aiohttp.ClientSession, topic: dict[str, Any]
) -> None:
    url = fleet.urls[0]
    hidden = await create(http, url, spec(topic["name"]))
    narrow = await tenant_key(http, url, [{"topics": "only-*", "actions": ["read"]}])
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {narrow}"}) as s:
        async with s.get(f"{url}/v1/subscriptions", params={"namespace": "it", "tenant": "acme"}) as r:
            assert hidden["id"] not in {x["id"] for x in (await r.json())["subscriptions"]}
        async with s.get(f"{url}/v1/subscriptions/it/acme/{hidden['id']}") as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "permission_missing"


async def tenant_key(http: aiohttp.ClientSession, url: str, grants: list[dict[str, Any]]) -> str:
    body = {"name": unique("k"), "role": "tenant", "namespace": "it", "tenant": "acme", "grants": grants}
    async with http.post(f"{url}/v1/keys", json=body) as r:
        assert r.status == 201, await r.text()
        secret: str = (await r.json())["secret"]
    return secret


async def assert_nothing_written(fleet: Fleet, http: aiohttp.ClientSession, sub_id: str) -> None:
    """No subscription and no dead-letter topic (neither the bus topic nor the Kafka one)."""
    for url in fleet.urls:
        async with http.get(f"{url}/v1/subscriptions/it/acme/{sub_id}") as r:
            assert r.status == 404
        assert await topic_status(http, url, f"{sub_id}-dlq") == 404
    assert f"{fleet.prefix}.it.acme.{sub_id}-dlq" not in await kafka_topics(fleet.bootstrap)
