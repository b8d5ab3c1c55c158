"""Topic metadata: a global table, so every worker holds every topic locally.

Publish looks a topic up on every request, so the lookup must never leave the worker.
Written only by workers.topics (the owner of the topic-commands partition); recovered
from its Kafka changelog when a worker starts.

partitions=1 and recovery_buffer_size=1 follow faust-streaming's advice for global
tables shared by several workers (otherwise recovery can loop).
"""

from __future__ import annotations

from bus.faust_app import app
from bus.models.topics import Topic
from bus.types import TopicId

topics_table = app.GlobalTable(
    "topics",
    key_type=str,
    value_type=bytes,
    partitions=1,
    recovery_buffer_size=1,
    help="Topic metadata by topic id (namespace/tenant/name).",
)


# Under this key (never a valid topic id) the table keeps the offset of the last applied
# command. It shares the table's one changelog partition, so any worker that sees the
# offset has also seen every change up to it.
APPLIED_KEY = ""


def get_topic(topic_id: TopicId) -> Topic | None:
    raw = topics_table.get(topic_id)
    return None if raw is None else Topic.model_validate_json(raw)


def all_topics() -> list[Topic]:
    return sorted(
        (Topic.model_validate_json(raw) for key, raw in topics_table.items() if key != APPLIED_KEY),
        key=lambda t: t.topic_id,
    )


def put_topic(topic: Topic) -> None:
    topics_table[topic.topic_id] = topic.model_dump_json().encode()


def remove_topic(topic_id: TopicId) -> None:
    topics_table.pop(topic_id, None)


def mark_applied(offset: int) -> None:
    topics_table[APPLIED_KEY] = str(offset).encode()


def applied_offset() -> int:
    """Offset of the last topic command this worker's copy of the table reflects (-1: none)."""
    raw = topics_table.get(APPLIED_KEY)
    return -1 if raw is None else int(raw)
