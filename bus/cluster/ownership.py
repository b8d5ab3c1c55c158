"""Which worker owns a key (a subscription, an agent, a conversation).

Every keyed state topic has state_partitions partitions, and keys hash to partitions as
Kafka's default partitioner does. Faust's consumer group assigns equal-sized topics that
every worker consumes together (co-partitioned), so one worker holds partition p of all
of them: it owns every key that hashes to p. A subscription's owner is the worker holding
its partition of the owners topic, which carries no records; a Faust agent consumes it
only so that the group spreads its partitions over the fleet and moves them when a
worker joins, leaves or dies. A request that reaches another worker is forwarded to the
owner (bus.cluster.forwarding).
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from bus.errors import OwnerMoved
from bus.kafka.faust_app import app
from bus.kafka.faust_patches import active_partitions, assignment_token
from bus.kafka.gateway import partition_for
from bus.settings import get_settings

__all__ = [
    "is_owner",
    "owned_partitions",
    "owner_partition",
    "owner_url",
    "owners_topic",
    "self_url",
    "worker_urls",
]

log = logging.getLogger(__name__)

owners_topic = app.topic(
    f"{get_settings().prefix}-subscription-owners",
    partitions=get_settings().state_partitions,
    internal=True,
    key_type=str,
    value_type=bytes,
    value_serializer="raw",
)


@app.agent(owners_topic)  # type: ignore[untyped-decorator]
async def hold_subscriptions(stream: faust.StreamT[bytes]) -> None:
    """Consumes nothing of interest: its partitions are the subscriptions this worker runs."""
    async for _ in stream:
        pass


def owner_partition(key: str) -> int:
    """The partition key hashes to on every keyed state topic (they all have state_partitions)."""
    return partition_for(key.encode(), get_settings().state_partitions, 0)


_owned: dict[str, frozenset[int]] = {}
_owned_from: list[Any] = [None]  # the assignment _owned was computed from
# (topic, partition) revoked since the assignment in force then was made.
_revoked: dict[str, set[int]] = {}


def owned_partitions(topic: faust.TopicT = owners_topic) -> frozenset[int]:
    # Asked on every request: computed once per assignment (each rebalance brings a new object).
    assignment = assignment_token(app)
    if assignment is not _owned_from[0]:
        _owned.clear()
        _revoked.clear()
        _owned_from[0] = assignment
    name = topic.get_topic_name()
    found = _owned.get(name)
    if found is None:
        found = _owned[name] = active_partitions(app, name) - _revoked.get(name, set())
    return found


@app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
async def own_none_of_the_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
    """Until the next assignment arrives, Faust still reports the old one; but a revoked
    partition may be another worker's already (this one was dropped from the group while
    it stalled): it owns none of them, so it decides and fences nothing for them."""
    owned_partitions()  # note the assignment in force, so the next one clears what follows
    for tp in revoked:
        _revoked.setdefault(tp.topic, set()).add(tp.partition)
    _owned.clear()


def is_owner(key: str, topic: faust.TopicT = owners_topic) -> bool:
    return owner_partition(key) in owned_partitions(topic)


def owner_url(key: str, topic: faust.TopicT = owners_topic) -> str:
    """The base URL of the worker that owns key on topic; OwnerMoved while nobody does."""
    name, wanted = topic.get_topic_name(), owner_partition(key)
    for url, topics in app.router.external_topics_metadata().items():
        if wanted in topics.get(name, ()):
            return str(url).rstrip("/")
    raise OwnerMoved("No worker owns this key at the moment (a rebalance?); retry", {"key": key})


def worker_urls() -> list[str]:
    """Every worker of the fleet, as the last rebalance saw it."""
    return sorted(str(url).rstrip("/") for url in app.router.external_topics_metadata())


def self_url() -> str:
    return str(app.conf.canonical_url).rstrip("/")
