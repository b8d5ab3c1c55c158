"""Publish: the envelope a caller sends and the receipt the bus returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, JsonValue

from agentbus_client.models.common import HeaderName, StrictModel

TOPIC_REF_PATTERN = r"^[a-z0-9-]{1,63}/[a-z0-9-]{1,63}/[a-z0-9-]{1,63}$"
JSON_CONTENT_TYPE = "application/json"


class Envelope(StrictModel):
    """One record to publish."""

    topic: str = Field(pattern=TOPIC_REF_PATTERN, description="namespace/tenant/name")
    key: str | None = Field(
        None, max_length=1024, description="Kafka key: same key, same partition, in order"
    )
    payload: JsonValue = Field(
        description="Any JSON value; a string with a text/* content_type is sent as is."
    )
    headers: dict[HeaderName, str] = Field(
        default_factory=dict, description="Caller headers; 'bus.' is reserved"
    )
    message_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._:-]{1,128}$", description="Default: a fresh UUID"
    )
    content_type: str = Field(JSON_CONTENT_TYPE, pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=127)


class Batch(StrictModel):
    records: list[Envelope] = Field(min_length=1)


class PublishResult(BaseModel):
    """A record the broker has acknowledged (acks=all), or one a rule parked for approval."""

    topic: str
    partition: int | None = Field(description="null while awaiting approval")
    offset: int | None = Field(description="null while awaiting approval")
    message_id: str
    timestamp: int = Field(description="Record timestamp, unix milliseconds (when parked: the request time)")
    status: Literal["published", "awaiting_approval"] = "published"
    approval_id: str | None = Field(None, description="Set when a rule parked the record for approval")
    approval_digest: str | None = None


class BatchResult(BaseModel):
    results: list[PublishResult]


class DeliveredRecord(BaseModel):
    """One record as a subscriber receives it (the data of an SSE 'record' event)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: str | None
    message_id: str | None
    content_type: str
    headers: dict[str, str]
    payload: JsonValue
