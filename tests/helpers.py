"""Small clients the integration tests share: SSE reading, Kafka end offsets, a worker's metric."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseStream:
    """An open SSE response, read event by event; comments are kept apart."""

    response: aiohttp.ClientResponse
    comments: list[str] = field(default_factory=list)

    async def next_event(self, timeout: float = 10.0) -> SseEvent:
        return await asyncio.wait_for(self._read_event(), timeout)

    async def events(self, count: int, timeout: float = 15.0) -> list[SseEvent]:
        return [await self.next_event(timeout) for _ in range(count)]

    async def _read_event(self) -> SseEvent:
        fields: dict[str, str] = {}
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise EOFError("SSE stream closed")
            line = raw.decode().rstrip("\n")
            if line == "":
                if fields:
                    return SseEvent(fields.get("event", "message"), fields.get("data", ""), fields.get("id"))
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(": ")
            fields[name] = value

    def close(self) -> None:
        self.response.close()


async def open_sse(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> SseStream:
    response = await session.get(url, headers=headers or {}, timeout=aiohttp.ClientTimeout(total=None))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return SseStream(response)


async def end_offsets(bootstrap: str, kafka_topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(kafka_topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(kafka_topic) or set()
        tps = [TopicPartition(kafka_topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str, kafka_topic: str) -> dict[int, int]:
    """The offsets the consumer group has committed for the topic's partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in found.items() if tp.topic == kafka_topic}
    finally:
        await admin.close()


async def kafka_topics(bootstrap: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return set(await consumer.topics())
    finally:
        await consumer.stop()


async def metric_value(http: aiohttp.ClientSession, url: str, name: str) -> float:
    """The value of one unlabelled metric in the worker's /metrics."""
    async with http.get(f"{url}/metrics") as r:
        text = await r.text()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match is not None, name
    return float(match.group(1))


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"
