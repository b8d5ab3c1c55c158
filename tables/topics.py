"""Topic metadata: a global table, so every worker holds every topic locally.

Publish looks a topic up on every request, so the lookup never leaves the worker.
Written only by workers.topics; recovered from its Kafka changelog at start-up.
"""

from __future__ import annotations

from bus.kafka.faust_app import app
from bus.state.command_table import CommandedTable
from bus.topics.models import Topic
from bus.types import TopicId

topics = CommandedTable(app, "topics", help="Topic metadata by topic id (namespace/tenant/name).")


def get_topic(topic_id: TopicId) -> Topic | None:
    return topics.get(topic_id, Topic)


def all_topics() -> list[Topic]:
    found = (topics.get(key, Topic) for key in topics.keys())
    return [t for t in found if t is not None]
