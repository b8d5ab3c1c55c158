"""Topic metadata: a global table, so every worker holds every topic locally.

Publish looks a topic up on every request, so the lookup must never leave the worker:
parsed topics are cached in memory and the cache is dropped on every change, local
(put/remove) or replicated (a changelog event from another worker).
Written only by workers.topics (the owner of the topic-commands partition); recovered
from its Kafka changelog when a worker starts.

partitions=1 and recovery_buffer_size=1 follow faust-streaming's advice for global
tables shared by several workers (otherwise recovery can loop).
"""

from __future__ import annotations

from typing import Any

from bus.faust_app import app
from bus.models.topics import Topic
from bus.types import TopicId

# Under this key (never a valid topic id) the table keeps the offset of the last applied
# command. It shares the table's one changelog partition, so any worker that sees the
# offset has also seen every change up to it.
APPLIED_KEY = ""

_parsed: dict[TopicId, Topic | None] = {}


async def _forget_parsed(_event: Any) -> None:
    _parsed.clear()


topics_table = app.GlobalTable(
    "topics",
    key_type=str,
    value_type=bytes,
    partitions=1,
    recovery_buffer_size=1,
    on_changelog_event=_forget_parsed,
    help="Topic metadata by topic id (namespace/tenant/name).",
)


def get_topic(topic_id: TopicId) -> Topic | None:
    if topic_id in _parsed:
        return _parsed[topic_id]
    raw = topics_table.get(topic_id)
    topic = None if raw is None or topic_id == APPLIED_KEY else Topic.model_validate_json(raw)
    if topic is not None:  # misses are not cached: a create may land any moment
        _parsed[topic_id] = topic
    return topic


def all_topics() -> list[Topic]:
    return sorted(
        (Topic.model_validate_json(raw) for key, raw in topics_table.items() if key != APPLIED_KEY),
        key=lambda t: t.topic_id,
    )


def put_topic(topic: Topic) -> None:
    topics_table[topic.topic_id] = topic.model_dump_json().encode()
    _parsed.clear()


def remove_topic(topic_id: TopicId) -> None:
    topics_table.pop(topic_id, None)
    _parsed.clear()


def mark_applied(offset: int) -> None:
    topics_table[APPLIED_KEY] = str(offset).encode()


def applied_offset() -> int:
    """Offset of the last topic command this worker's copy of the table reflects (-1: none)."""
    raw = topics_table.get(APPLIED_KEY)
    return -1 if raw is None else int(raw)
