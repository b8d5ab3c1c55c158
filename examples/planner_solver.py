"""A two-agent example on Agentbus: a planner hands out tasks, a solver answers them.

The planner publishes tasks through worker A; the solver follows the tasks topic over
SSE on worker B, works each one out and publishes the answer; the planner follows the
results topic and matches answers to its tasks by key. Everything crosses real Kafka.

    python examples/planner_solver.py [--a URL] [--b URL] [--tasks N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

NAMESPACE, TENANT = "demo", "acme"
TASKS, RESULTS = f"{NAMESPACE}/{TENANT}/tasks", f"{NAMESPACE}/{TENANT}/results"


async def ensure_topic(http: aiohttp.ClientSession, url: str, name: str) -> None:
    body = {"namespace": NAMESPACE, "tenant": TENANT, "name": name, "partitions": 3}
    async with http.post(f"{url}/v1/topics", json=body) as r:
        if r.status not in (201, 409):
            raise SystemExit(f"could not create {name}: {r.status} {await r.text()}")


async def publish(http: aiohttp.ClientSession, url: str, envelope: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{url}/v1/publish", json=envelope) as r:
        body: dict[str, Any] = await r.json()
        if r.status != 200:
            raise SystemExit(f"publish failed: {body}")
        return body


async def follow(http: aiohttp.ClientSession, url: str, topic: str) -> AsyncIterator[dict[str, Any]]:
    """Yield the records of a topic from now on, as the SSE endpoint delivers them."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with http.get(f"{url}/v1/subscribe/{topic}?from=latest", timeout=timeout) as r:
        async for line in r.content:
            if line.startswith(b"data: "):
                yield json.loads(line[6:])


async def solver(http: aiohttp.ClientSession, url: str, ready: asyncio.Event) -> None:
    ready.set()
    async for record in follow(http, url, TASKS):
        task = record["payload"]
        answer = sum(task["numbers"])
        await publish(
            http,
            url,
            {
                "topic": RESULTS,
                "key": record["key"],
                "payload": {"task": task["id"], "sum": answer},
                "headers": {"agent": "solver"},
            },
        )
        print(f"  solver   <- task {task['id']} via {url}, answered {answer}")


async def planner(http: aiohttp.ClientSession, url: str, count: int) -> float:
    pending: dict[str, float] = {}
    results = follow(http, url, RESULTS)
    first = asyncio.ensure_future(anext(results))  # subscribe before publishing
    await asyncio.sleep(0.5)
    for _ in range(count):
        task_id = uuid.uuid4().hex[:8]
        numbers = [random.randint(1, 100) for _ in range(3)]
        pending[task_id] = time.monotonic()
        receipt = await publish(
            http,
            url,
            {
                "topic": TASKS,
                "key": task_id,
                "payload": {"id": task_id, "numbers": numbers},
                "headers": {"agent": "planner"},
            },
        )
        print(
            f"  planner  -> task {task_id} {numbers} (partition {receipt['partition']}, "
            f"offset {receipt['offset']})"
        )
    latencies = []
    record = await first
    while True:
        task_id = record["payload"]["task"]
        if task_id in pending:
            latency = time.monotonic() - pending.pop(task_id)
            latencies.append(latency)
            print(
                f"  planner  <- result {task_id} = {record['payload']['sum']} "
                f"({latency * 1000:.0f} ms round trip)"
            )
        if not pending:
            break
        record = await anext(results)
    return sum(latencies) / len(latencies)


def auth_headers() -> dict[str, str]:
    """The key to send: AGENTBUS_KEY, else the admin key scripts/fleet keeps in .data/admin-key."""
    key = os.environ.get("AGENTBUS_KEY")
    if not key:
        path = Path(__file__).resolve().parent.parent / ".data" / "admin-key"
        key = path.read_text().strip() if path.exists() else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", default="http://127.0.0.1:6066", help="worker the planner uses")
    parser.add_argument("--b", default="http://127.0.0.1:6067", help="worker the solver uses")
    parser.add_argument("--tasks", type=int, default=5)
    args = parser.parse_args()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), headers=auth_headers()) as http:
        for name in ("tasks", "results"):
            await ensure_topic(http, args.a, name)
        ready = asyncio.Event()
        solving = asyncio.create_task(solver(http, args.b, ready))
        await ready.wait()
        try:
            mean = await asyncio.wait_for(planner(http, args.a, args.tasks), timeout=60)
        finally:
            solving.cancel()
    print(f"\n{args.tasks} tasks solved across two workers; mean round trip {mean * 1000:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
