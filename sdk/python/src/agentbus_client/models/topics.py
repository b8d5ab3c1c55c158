"""Topic metadata: what a caller sends to create a topic and what the bus keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from agentbus_client.models.common import Labels, Name, StrictModel
from agentbus_client.models.schemas import SUBJECT_PATTERN


class SchemaBinding(StrictModel):
    """The schema subject (and version) every payload published to a topic must match."""

    subject: str = Field(pattern=SUBJECT_PATTERN)
    version: Annotated[int, Field(ge=1)] | Literal["latest"] = "latest"


class TopicSpec(StrictModel):
    """The body of POST /v1/topics."""

    namespace: Name
    tenant: Name
    name: Name
    partitions: int | None = Field(None, ge=1, le=256, description="Default: AGENTBUS_DEFAULT_PARTITIONS")
    replication_factor: int | None = Field(
        None, ge=1, le=16, description="Default: the fleet's AGENTBUS_REPLICATION_FACTOR"
    )
    retention_ms: int | None = Field(
        None, ge=-1, description="Kafka retention.ms; -1 keeps forever; null uses the broker default"
    )
    retention_bytes: int | None = Field(None, ge=-1, description="Kafka retention.bytes per partition")
    description: str = Field("", max_length=1024)
    labels: Labels = Field(default_factory=dict)
    schema_binding: SchemaBinding | None = Field(None, description="Validate every payload against this")

    @property
    def topic_id(self) -> str:
        return topic_id(self.namespace, self.tenant, self.name)


class Topic(BaseModel):
    """A topic as the bus keeps it (and returns it)."""

    namespace: str
    tenant: str
    name: str
    kafka_topic: str = Field(description="The real Kafka topic behind this bus topic.")
    partitions: int
    replication_factor: int
    retention_ms: int | None = None
    retention_bytes: int | None = None
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    schema_binding: SchemaBinding | None = Field(None, description="The schema payloads must match")

    @property
    def topic_id(self) -> str:
        return topic_id(self.namespace, self.tenant, self.name)


class TopicList(BaseModel):
    topics: list[Topic]


def topic_id(namespace: str, tenant: str, name: str) -> str:
    return f"{namespace}/{tenant}/{name}"
