"""Applies topic commands to the topic table, in log order.

The commands topic has one partition, so every metadata change goes through one
worker at a time and the log order decides races: the first create of a topic wins.
Delivery is at least once; applying a command twice changes nothing.
"""

from __future__ import annotations

import logging

import faust

from bus.kafka.faust_app import app
from bus.state.command_apply import apply_commands
from bus.topics.models import TopicCommand
from bus.topics.store import get_topic
from tables.topics import topic_commands, topics

__all__: list[str] = []

log = logging.getLogger(__name__)


@app.agent(topic_commands)  # type: ignore[untyped-decorator]
async def apply_topic_commands(stream: faust.StreamT[bytes]) -> None:
    await apply_commands(stream, TopicCommand, topics, apply)


def apply(command: TopicCommand) -> None:
    exists = get_topic(command.topic_id) is not None
    if command.op == "create" and command.topic is not None and not exists:
        topics.put(command.topic_id, command.topic)
        log.info("topic %s created", command.topic_id)
    elif command.op == "update" and command.topic is not None and exists:
        topics.put(command.topic_id, command.topic)
        log.info("topic %s updated", command.topic_id)
    elif command.op == "delete":
        topics.remove(command.topic_id)
        log.info("topic %s deleted", command.topic_id)
