"""Topic lifecycle against the real broker and a two-worker fleet."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.fleet import Fleet
from tests.helpers import end_offsets, kafka_topics, unique

pytestmark = pytest.mark.integration


async def test_create_is_seen_by_every_worker_and_creates_the_kafka_topic(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    name = unique("orders")
    body = {
        "namespace": "it",
        "tenant": "acme",
        "name": name,
        "partitions": 4,
        "retention_ms": 3_600_000,
        "description": "orders",
        "labels": {"team": "a"},
    }
    async with http.post(f"{fleet.urls[0]}/v1/topics", json=body) as r:
        assert r.status == 201
        created = await r.json()
    assert created["kafka_topic"] == f"{fleet.prefix}.it.acme.{name}"
    assert created["partitions"] == 4 and created["labels"] == {"team": "a"}
    assert created["schema_binding"] is None and created["created_at"]

    async with http.get(f"{fleet.urls[1]}/v1/topics/it/acme/{name}") as r:
        assert r.status == 200
        assert await r.json() == created
    assert len(await end_offsets(fleet.bootstrap, created["kafka_topic"])) == 4


async def test_list_filters_by_namespace_and_tenant(fleet: Fleet, http: aiohttp.ClientSession) -> None:
    tenant = unique("ten")
    for name in ("a", "b"):
        body = {"namespace": "list", "tenant": tenant, "name": name}
        async with http.post(f"{fleet.urls[0]}/v1/topics", json=body) as r:
            assert r.status == 201
    async with http.get(f"{fleet.urls[0]}/v1/topics", params={"namespace": "list", "tenant": tenant}) as r:
        listed = (await r.json())["topics"]  # the creating worker lists its writes at once
    assert [t["name"] for t in listed] == ["a", "b"]
    assert all(t["partitions"] == 3 for t in listed)  # the fleet's default


async def test_duplicate_create_is_a_conflict(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    body = {"namespace": "it", "tenant": "acme", "name": topic["name"]}
    async with http.post(f"{fleet.urls[1]}/v1/topics", json=body) as r:
        assert r.status == 409
        assert (await r.json())["error"]["code"] == "topic_exists"


async def test_delete_removes_metadata_and_kafka_topic(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    path = f"/v1/topics/it/acme/{topic['name']}"
    async with http.delete(f"{fleet.urls[1]}{path}") as r:
        assert r.status == 200
    async with http.get(f"{fleet.urls[1]}{path}") as r:  # the deleting worker: at once
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "topic_not_found"
    assert await eventually_status(http, f"{fleet.urls[0]}{path}", 404)  # the other: soon
    assert topic["kafka_topic"] not in await kafka_topics(fleet.bootstrap)
    async with http.delete(f"{fleet.urls[0]}{path}") as r:
        assert r.status == 404


async def test_a_deleted_topic_can_be_created_again(
    fleet: Fleet, topic: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    async with http.delete(f"{fleet.urls[0]}/v1/topics/it/acme/{topic['name']}") as r:
        assert r.status == 200
    body = {"namespace": "it", "tenant": "acme", "name": topic["name"], "partitions": 1}
    async with http.post(f"{fleet.urls[1]}/v1/topics", json=body) as r:
        assert r.status == 201
        assert (await r.json())["partitions"] == 1


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"namespace": "it", "tenant": "acme", "name": "Upper"}, "name"),
        ({"namespace": "it", "tenant": "acme", "name": "has_underscore"}, "name"),
        ({"namespace": "it", "tenant": "acme", "name": "has.dot"}, "name"),
        ({"namespace": "it", "tenant": "acme", "name": "-lead"}, "name"),
        ({"namespace": "it", "tenant": "", "name": "x"}, "tenant"),
        ({"namespace": "it", "tenant": "acme", "name": "x" * 64}, "name"),
        ({"namespace": "it", "tenant": "acme", "name": "x", "partitions": 0}, "partitions"),
        ({"namespace": "it", "tenant": "acme", "name": "x", "partitions": "3"}, "partitions"),
        ({"namespace": "it", "tenant": "acme", "name": "x", "bogus": 1}, "bogus"),
        ({"tenant": "acme", "name": "x"}, "namespace"),
    ],
)
async def test_bad_topic_specs_are_422_with_the_field_path(
    fleet: Fleet, http: aiohttp.ClientSession, body: dict[str, Any], path: str
) -> None:
    async with http.post(f"{fleet.urls[0]}/v1/topics", json=body) as r:
        assert r.status == 422
        error = (await r.json())["error"]
    assert error["code"] == "invalid_request"
    assert path in [d["path"] for d in error["details"]]


async def test_replication_beyond_the_cluster_is_refused_and_creates_nothing(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    name = unique("rf")
    body = {"namespace": "it", "tenant": "acme", "name": name, "replication_factor": 9}
    async with http.post(f"{fleet.urls[0]}/v1/topics", json=body) as r:
        assert r.status == 422
        assert (await r.json())["error"]["details"][0]["path"] == "replication_factor"
    assert f"{fleet.prefix}.it.acme.{name}" not in await kafka_topics(fleet.bootstrap)
    async with http.get(f"{fleet.urls[0]}/v1/topics/it/acme/{name}") as r:
        assert r.status == 404


async def eventually_status(http: aiohttp.ClientSession, url: str, status: int, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with http.get(url) as r:
            if r.status == status:
                return True
        await asyncio.sleep(0.01)
    return False


async def test_racing_creates_on_two_workers_have_one_winner(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    name = unique("race")

    async def create(url: str, partitions: int) -> int:
        body = {"namespace": "it", "tenant": "acme", "name": name, "partitions": partitions}
        async with http.post(f"{url}/v1/topics", json=body) as r:
            return r.status

    statuses = await asyncio.gather(create(fleet.urls[0], 2), create(fleet.urls[1], 2))
    assert sorted(statuses) == [201, 409]
    async with http.get(f"{fleet.urls[0]}/v1/topics", params={"namespace": "it", "tenant": "acme"}) as r:
        assert [t["name"] for t in (await r.json())["topics"]].count(name) == 1
