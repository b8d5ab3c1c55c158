"""Token streams: chunks of a reply as they are produced, one Kafka record per write."""

from __future__ import annotations

from agentbus_client.models.streams import (
    CancelStream,
    Chunk,
    ChunksReceipt,
    ChunksSpec,
    EndStatus,
    SocketFrame,
    StreamEnd,
    StreamEndSpec,
)
from pydantic import BaseModel

__all__ = [
    "CancelStream",
    "Chunk",
    "ChunksReceipt",
    "ChunksSpec",
    "EndStatus",
    "SocketFrame",
    "StreamEnd",
    "StreamEndSpec",
    "StreamView",
    "stream_view_key",
]


class StreamView(BaseModel):
    """What the conversation's owner keeps about a stream: where it starts and how it ended."""

    conversation: str
    stream_id: str
    first_offset: int
    end: StreamEnd | None = None


def stream_view_key(conversation: str, stream_id: str) -> str:
    return f"stream:{conversation}/{stream_id}"
