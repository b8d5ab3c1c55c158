"""Topic metadata: what a caller sends to create a topic and what the bus keeps."""

from __future__ import annotations

from typing import Literal

from agentbus_client.models.topics import SchemaBinding, Topic, TopicList, TopicSpec, topic_id
from pydantic import BaseModel

from bus.types import TopicId

__all__ = ["SchemaBinding", "Topic", "TopicCommand", "TopicList", "TopicSpec", "kafka_topic_name", "topic_id"]


class TopicCommand(BaseModel):
    """A change to topic metadata, as a record on the topic-commands topic.

    When two creates of one topic race, the first command in the log wins; the other
    request sees a different Topic (created_at differs) in the table and answers 409.
    """

    op: Literal["create", "update", "delete"]
    topic_id: TopicId
    topic: Topic | None = None


def kafka_topic_name(prefix: str, namespace: str, tenant: str, name: str) -> str:
    """The Kafka topic behind a bus topic: '{prefix}.{namespace}.{tenant}.{name}'.

    The parts cannot contain '.', so distinct bus topics always map to distinct names.
    """
    return f"{prefix}.{namespace}.{tenant}.{name}"
