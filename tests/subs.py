"""A small client for subscriptions in tests: retries what the bus calls retriable."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.helpers import unique

RETRIABLE = {"owner_moved", "not_ready", "kafka_unavailable", "timeout"}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, patience: float = 60.0
) -> tuple[int, Any]:
    """(status, JSON body); a retriable 503/504 (a rebalance, a worker starting) is retried."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            async with http.request(method, url, json=body) as r:
                data = await r.json(content_type=None)
                error = data.get("error") if isinstance(data, dict) else None
                code = error.get("code") if isinstance(error, dict) else None
                if r.status < 503 or code not in RETRIABLE:
                    return r.status, data
        except aiohttp.ClientConnectionError:  # a worker killed or restarting
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{method} {url} kept failing")
        await asyncio.sleep(0.3)


async def ok(http: aiohttp.ClientSession, method: str, url: str, body: Any = None, status: int = 200) -> Any:
    got, data = await call(http, method, url, body)
    assert got == status, (got, data)
    return data


async def new_topic(http: aiohttp.ClientSession, url: str, partitions: int = 1) -> str:
    name = unique("st")
    body = {"namespace": "it", "tenant": "acme", "name": name, "partitions": partitions}
    await ok(http, "POST", f"{url}/v1/topics", body, 201)
    return name


async def publish(
    http: aiohttp.ClientSession, url: str, topic: str, payloads: list[Any], **extra: Any
) -> None:
    for start in range(0, len(payloads), 50):
        records = [{"topic": f"it/acme/{topic}", "payload": p, **extra} for p in payloads[start : start + 50]]
        await ok(http, "POST", f"{url}/v1/publish/batch", {"records": records})


async def new_subscription(http: aiohttp.ClientSession, url: str, topic: str, **spec: Any) -> str:
    """A subscription of topic from earliest (unless spec says otherwise); returns its path."""
    sub_id = unique("s")
    body = {"namespace": "it", "tenant": "acme", "id": sub_id, "topic": topic, "start": "earliest", **spec}
    await ok(http, "POST", f"{url}/v1/subscriptions", body, 201)
    return f"/v1/subscriptions/it/acme/{sub_id}"


async def pull(
    http: aiohttp.ClientSession, url: str, sub: str, max_records: int = 100, wait_ms: int = 2000
) -> list[dict[str, Any]]:
    data = await ok(http, "POST", f"{url}{sub}/pull", {"max_records": max_records, "wait_ms": wait_ms})
    deliveries: list[dict[str, Any]] = data["deliveries"]
    return deliveries


async def ack(http: aiohttp.ClientSession, url: str, sub: str, deliveries: list[dict[str, Any]]) -> None:
    if deliveries:
        data = await ok(
            http, "POST", f"{url}{sub}/ack", {"delivery_ids": [d["delivery_id"] for d in deliveries]}
        )
        assert data["acked"] == len(deliveries)


async def drain(
    http: aiohttp.ClientSession, url: str, sub: str, expected: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Pull and ack until expected records came (or the time is up)."""
    got: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < expected and asyncio.get_running_loop().time() < deadline:
        batch = await pull(http, url, sub, wait_ms=500)
        await ack(http, url, sub, batch)
        got += batch
    return got


def positions(deliveries: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(d["partition"], d["offset"]) for d in deliveries]
