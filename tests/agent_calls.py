"""A small client for agents in tests (retrying what the bus calls retriable, as tests/subs.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.helpers import SseStream, open_sse, unique
from tests.subs import call, ok


def agent_path(agent: dict[str, Any]) -> str:
    return f"/v1/agents/{agent['namespace']}/{agent['tenant']}/{agent['id']}"


def agent_key(agent: dict[str, Any]) -> str:
    return f"{agent['namespace']}/{agent['tenant']}/{agent['id']}"


async def register(
    http: aiohttp.ClientSession, url: str, tenant: str = "acme", **spec: Any
) -> dict[str, Any]:
    body = {"namespace": "it", "tenant": tenant, "id": unique("a"), **spec}
    agent: dict[str, Any] = await ok(http, "POST", f"{url}/v1/agents", body, 201)
    return agent


async def beat(http: aiohttp.ClientSession, url: str, agent: dict[str, Any]) -> dict[str, Any]:
    receipt: dict[str, Any] = await ok(http, "POST", f"{url}{agent_path(agent)}/heartbeat", {}, 202)
    return receipt


async def send(
    http: aiohttp.ClientSession, url: str, agent: dict[str, Any], payload: Any, **extra: Any
) -> dict[str, Any]:
    receipt: dict[str, Any] = await ok(
        http, "POST", f"{url}{agent_path(agent)}/messages", {"payload": payload, **extra}
    )
    return receipt


async def pull_inbox(
    http: aiohttp.ClientSession, url: str, agent: dict[str, Any], max_records: int = 100, wait_ms: int = 2000
) -> list[dict[str, Any]]:
    body = {"max_records": max_records, "wait_ms": wait_ms}
    data = await ok(http, "POST", f"{url}{agent_path(agent)}/inbox/pull", body)
    deliveries: list[dict[str, Any]] = data["deliveries"]
    return deliveries


async def ack_inbox(
    http: aiohttp.ClientSession, url: str, agent: dict[str, Any], deliveries: list[dict[str, Any]]
) -> None:
    if deliveries:
        ids = [d["delivery_id"] for d in deliveries]
        data = await ok(http, "POST", f"{url}{agent_path(agent)}/inbox/ack", {"delivery_ids": ids})
        assert data["acked"] == len(deliveries)


async def drain_inbox(
    http: aiohttp.ClientSession, url: str, agent: dict[str, Any], expected: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Pull and ack until expected messages came (or the time is up)."""
    got: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < expected and asyncio.get_running_loop().time() < deadline:
        batch = await pull_inbox(http, url, agent, wait_ms=500)
        await ack_inbox(http, url, agent, batch)
        got += batch
    return got


async def wait_for_liveness(
    http: aiohttp.ClientSession, url: str, agent: dict[str, Any], wanted: str, timeout: float = 30.0
) -> dict[str, Any]:
    """The agent once its liveness is wanted; an agent registering meanwhile (404) is waited for."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, found = await call(http, "GET", f"{url}{agent_path(agent)}")
        assert status in (200, 404), found
        if status == 200 and found["liveness"] == wanted:
            return dict(found)
        now = found["liveness"] if status == 200 else "not registered"
        assert asyncio.get_running_loop().time() < deadline, f"still {now}, not {wanted}"
        await asyncio.sleep(0.2)


async def read_events(
    http: aiohttp.ClientSession, url: str, tenant: str, idle: float = 3.0
) -> list[dict[str, Any]]:
    """Every event on the tenant's agent-events topic so far (until idle seconds pass without one)."""
    stream = await open_sse(http, f"{url}/v1/subscribe/it/{tenant}/agent-events?from=earliest")
    try:
        return [e async for e in events_of(stream, idle)]
    finally:
        stream.close()


async def events_of(stream: SseStream, idle: float) -> Any:
    while True:
        try:
            event = await stream.next_event(idle)
        except TimeoutError:
            return
        if event.event == "record":
            yield event.json["payload"]


async def expect_events(
    stream: SseStream, agent: dict[str, Any], count: int, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """The next count events about agent on an open agent-events stream."""
    found: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(found) < count:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"only {found} of {count} events about {agent['id']}"
        event = await stream.next_event(left)
        if event.event == "record" and event.json["payload"]["agent"] == agent_key(agent):
            found.append(event.json["payload"])
    return found


async def tenant_key(
    http: aiohttp.ClientSession, urls: list[str], actions: list[str], tenant: str = "acme"
) -> str:
    """A new key of it/{tenant} with these actions on every topic, once every worker knows it
    (keys reach the other workers within milliseconds: a test must not race that)."""
    spec = {
        "name": unique("k"),
        "role": "tenant",
        "namespace": "it",
        "tenant": tenant,
        "grants": [{"topics": "*", "actions": actions}],
    }
    secret: str = (await ok(http, "POST", f"{urls[0]}/v1/keys", spec, 201))["secret"]
    deadline = asyncio.get_running_loop().time() + 15
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {secret}"}) as session:
        for url in urls:
            while True:
                async with session.get(f"{url}/v1/agents?tenant=none") as r:
                    if r.status == 200:
                        break
                assert asyncio.get_running_loop().time() < deadline, "the key did not reach every worker"
                await asyncio.sleep(0.05)
    return secret
