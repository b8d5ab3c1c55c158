"""Token streams: chunks of a reply as they are produced, one Kafka record per write."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, JsonValue, model_validator

from agentbus_client.models.common import Name, StrictModel
from agentbus_client.models.tools import Usage

StreamId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
EndStatus = Literal["complete", "error", "cancelled"]


class Chunk(StrictModel):
    chunk_seq: int = Field(ge=0, le=10_000_000, description="0, 1, 2, ... within the stream")
    data: JsonValue


class ChunkForms(StrictModel):
    """One chunk (chunk_seq, data) or several (chunks): the two ways to send chunks."""

    chunk_seq: int | None = Field(None, ge=0, le=10_000_000)
    data: JsonValue = None
    chunks: list[Chunk] | None = Field(None, min_length=1, max_length=1000)

    def all_chunks(self) -> list[Chunk]:
        if self.chunks is not None:
            return self.chunks
        assert self.chunk_seq is not None
        return [Chunk(chunk_seq=self.chunk_seq, data=self.data)]


class ChunksSpec(ChunkForms):
    """The body of POST .../stream-chunks: one chunk (chunk_seq, data) or several (chunks)."""

    stream_id: StreamId
    sender: Name | None = Field(
        None, description="The producing agent (a participant, if the conversation names any)"
    )

    @model_validator(mode="after")
    def one_form(self) -> ChunksSpec:
        if (self.chunks is None) == (self.chunk_seq is None):
            raise ValueError("give chunk_seq and data, or chunks")
        return self


class ChunksReceipt(BaseModel):
    stream_id: str
    accepted: int
    cancelled: bool = Field(False, description="A consumer cancelled the stream: stop producing")


class StreamEndSpec(StrictModel):
    """The body of POST .../stream-end."""

    stream_id: StreamId
    sender: Name | None = None
    status: EndStatus = "complete"
    last_chunk_seq: int | None = Field(None, ge=-1, description="The stream's last chunk_seq (-1: no chunks)")
    error: str = Field("", max_length=4096)
    usage: Usage | None = None


class SocketEnd(StrictModel):
    """The end, sent as the last frame of a stream's WebSocket."""

    status: EndStatus = "complete"
    last_chunk_seq: int | None = Field(None, ge=-1)
    error: str = Field("", max_length=4096)
    usage: Usage | None = None


class SocketFrame(ChunkForms):
    """A frame a producer sends on a stream's WebSocket: a chunk, chunks, or the end."""

    id: str | int | None = Field(None, description="Echoed in the frame's answer")
    end: SocketEnd | None = None

    @model_validator(mode="after")
    def one_form(self) -> SocketFrame:
        given = [self.chunk_seq is not None, self.chunks is not None, self.end is not None]
        if sum(given) != 1:
            raise ValueError("give chunk_seq and data, or chunks, or end")
        return self


class StreamEnd(BaseModel):
    """The terminal envelope of a stream (also what a consumer's cancel writes)."""

    stream_id: str
    status: EndStatus
    last_chunk_seq: int | None = None
    error: str = ""
    usage: Usage | None = None
    by: Literal["producer", "consumer"] = "producer"
    at: int


class CancelStream(StrictModel):
    reason: str = Field("", max_length=1024)


class StreamChunk(BaseModel):
    """A `chunk` event of a stream read (or a `late` one: it came after its gap was reported)."""

    chunk_seq: int
    data: JsonValue = None
    late: bool = False


class StreamGap(BaseModel):
    """A `gap` event: chunks from_chunk_seq to to_chunk_seq (both included) will not come."""

    from_chunk_seq: int
    to_chunk_seq: int
