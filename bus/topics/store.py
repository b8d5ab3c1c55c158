"""Typed reads of the topics table (tables/topics.py): what the service and the processor share."""

from __future__ import annotations

from bus.topics.models import Topic
from bus.types import TopicId
from tables.topics import topics

__all__ = ["all_topics", "get_topic"]


def get_topic(topic_id: TopicId) -> Topic | None:
    return topics.get(topic_id, Topic)


def all_topics() -> list[Topic]:
    found = (topics.get(key, Topic) for key in topics.keys())
    return [t for t in found if t is not None]
