"""The agent SDK without a bus: its public names, and how the stream writer batches,
numbers and ends (the integration tests run it against the fleet)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bus.sdk import client as sdk_client
from bus.sdk import faust_agent as agent_sdk
from bus.sdk import streams as sdk_streams
from bus.sdk.client import BusAgentError
from bus.sdk.streams import MAX_BATCH, PostTransport, StreamChunk, StreamGap, StreamWriter, event_of
from bus.streams.models import StreamEnd


def test_the_public_names_are_deliberate() -> None:
    assert sorted(agent_sdk.__all__) == ["BusAgent", "BusAgentError", "BusClient", "bus_agent"]
    assert sorted(sdk_client.__all__) == ["BusAgentError", "BusClient"]
    assert sorted(sdk_streams.__all__) == ["StreamChunk", "StreamEvent", "StreamGap", "StreamWriter"]


class Bus:
    """Records what the writer posts; answers like the bus, or refuses chunk writes from `refuse_at`."""

    def __init__(self, refuse_at: int | None = None, code: str = "kafka_rejected") -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.refuse_at, self.code = refuse_at, code

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        await asyncio.sleep(0.01)  # a request in flight
        self.posts.append((path.rsplit("/", 1)[-1], body))
        if path.endswith("/stream-end"):
            return {**body, "by": "producer", "at": 1}
        if self.refuse_at is not None and len(self.posts) > self.refuse_at:
            raise BusAgentError(409, {"error": {"code": self.code, "message": "no"}})
        return {"stream_id": body["stream_id"], "accepted": len(body["chunks"])}

    def chunks(self) -> list[int]:
        return [
            c["chunk_seq"] for kind, body in self.posts if kind == "stream-chunks" for c in body["chunks"]
        ]


async def test_chunks_written_during_a_post_go_in_the_next_one() -> None:
    bus = Bus()
    async with StreamWriter(PostTransport(bus.post, "/v1/conversations/it/acme/c"), "s", "writer") as s:
        for i in range(2500):
            await s.write(i)
            if i % 100 == 0:
                await asyncio.sleep(0.001)
    assert bus.chunks() == list(range(2500)), "numbered in write order, each once"
    sizes = [len(body["chunks"]) for kind, body in bus.posts if kind == "stream-chunks"]
    assert max(sizes) <= MAX_BATCH and len(sizes) == s.requests < 2500 / 50
    kind, end = bus.posts[-1]
    assert kind == "stream-end" and (end["status"], end["last_chunk_seq"], end["sender"]) == (
        "complete",
        2499,
        "writer",
    )
    assert s.end is not None and s.end.status == "complete"


async def test_a_raising_block_ends_the_stream_with_error_after_its_chunks() -> None:
    bus = Bus()
    with pytest.raises(KeyError):
        async with StreamWriter(PostTransport(bus.post, "/c"), "s", None) as s:
            await s.write("a")
            raise KeyError("model")
    assert [kind for kind, _ in bus.posts] == ["stream-chunks", "stream-end"]
    end = bus.posts[-1][1]
    assert end["status"] == "error" and "KeyError" in end["error"] and "sender" not in end


async def test_a_failed_chunk_write_fails_the_next_write_and_a_cancelled_stream_gets_no_end() -> None:
    bus = Bus(refuse_at=0)
    with pytest.raises(BusAgentError):
        async with StreamWriter(PostTransport(bus.post, "/c"), "s", None) as s:
            await s.write("a")
            await asyncio.sleep(0.05)
            await s.write("b")
    assert bus.posts[-1][1]["status"] == "error", "the stream still takes an end: it says error"

    cancelled = Bus(refuse_at=0, code="stream_cancelled")
    with pytest.raises(BusAgentError):
        async with StreamWriter(PostTransport(cancelled.post, "/c"), "s", None) as s:
            await s.write("a")
    assert [kind for kind, _ in cancelled.posts] == ["stream-chunks"] and s.end is None


def test_sse_events_become_typed_events() -> None:
    assert event_of("chunk", {"chunk_seq": 3, "data": {"t": "x"}}) == StreamChunk(3, {"t": "x"})
    assert event_of("gap", {"from_chunk_seq": 4, "to_chunk_seq": 6}) == StreamGap(4, 6)
    assert event_of("late", {"chunk_seq": 5, "data": 1}) == StreamChunk(5, 1, late=True)
    end = event_of("end", {"stream_id": "s", "status": "error", "error": "boom", "at": 5})
    assert isinstance(end, StreamEnd) and end.error == "boom"
    assert event_of("something-newer", {}) is None
