"""The Faust app: one per worker process. Tables and agents attach to it on import."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faust

from bus.settings import get_settings

log = logging.getLogger(__name__)


class BusApp(faust.App):  # type: ignore[misc]
    """The Faust app, creating its internal topics before its consumer first subscribes.

    Faust declares internal topics while its consumer group forms; on a fresh broker the
    first assignment can run before a new topic is in the metadata, and Faust then skips
    that topic ("Ignoring missing topic") until some later rebalance, so its processor
    never runs. Creating every command and changelog topic first closes that race.
    """

    async def on_first_start(self) -> None:
        await super().on_first_start()
        from bus.kafka.gateway import declare_topics  # late: bus.kafka.gateway is not needed to build the app

        specs: list[tuple[str, int, dict[str, str]]] = [
            (agent.channel.get_topic_name(), agent.channel.partitions or 1, {})
            for agent in self.agents.values()
        ] + [
            (table.changelog_topic.get_topic_name(), table.partitions or 1, {"cleanup.policy": "compact"})
            for table in self.tables.values()
        ]
        await declare_topics(get_settings(), specs)


PROCESSOR_FETCH_MIN_BYTES = 65_536  # the broker holds a processor's fetch until this much, or the wait


def tune_worker_consumer() -> None:
    """Make Faust's worker consumer read committed records only, and fetch in batches.

    Faust reads uncommitted records unless its own exactly-once mode is on, and so would
    apply records of a Kafka transaction that was later aborted (a worker killed in the
    middle of one). The bus writes approval decisions in transactions (bus.approvals.service), so
    every processor must see a transaction's records only once it committed.

    Faust fetches with fetch_min_bytes 1: under a steady trickle of records (token
    streams) every fetch returns at once with a record or two, and the fetch loop became
    the worker's largest CPU cost. Letting the broker hold a fetch for up to
    AGENTBUS_PROCESSOR_FETCH_WAIT gathers records at the price of that much apply delay.
    aiokafka takes both when the consumer starts, after Faust built it here.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    build = AIOKafkaConsumerThread._create_worker_consumer
    if getattr(build, "tuned", False):
        return

    def build_tuned(self: Any, transport: Any) -> Any:
        consumer = build(self, transport)
        consumer._isolation_level = "read_committed"
        wait_ms = int(get_settings().timing.processor_fetch_wait * 1000)
        if wait_ms > 0:
            consumer._fetch_min_bytes = PROCESSOR_FETCH_MIN_BYTES
            consumer._fetch_max_wait_ms = wait_ms
        return consumer

    build_tuned.tuned = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = build_tuned


def safe_standby_seeks() -> None:
    """Never let Faust seek a changelog partition to a negative offset.

    faust-streaming's recovery maps an unknown position (-1) to 0 but passes anything else
    on: a standby partition it has no position for yet goes as None, aiokafka refuses it,
    and the worker crashed (seen after a restart of the local fleet). Reading such a
    partition from its start instead only costs time: applying a changelog again is
    harmless.
    """
    from faust.tables.recovery import Recovery

    seek = Recovery._seek_offsets
    if getattr(seek, "safe", False):
        return

    async def seek_safely(self: Any, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        for tp in tps:
            if not isinstance(offsets[tp], int) or offsets[tp] < -1:
                log.info(
                    "recovery would seek %s (%s) to %r: reading it from its start", tp, title, offsets[tp]
                )
                offsets[tp] = -1
        await seek(self, consumer, tps, offsets, title)

    seek_safely.safe = True  # type: ignore[attr-defined]
    Recovery._seek_offsets = seek_safely


def create_app() -> faust.App:
    s = get_settings()
    tune_worker_consumer()
    safe_standby_seeks()
    Path(s.data_dir).parent.mkdir(parents=True, exist_ok=True)  # faust makes only the leaf
    return BusApp(
        s.app_id,
        broker=[f"kafka://{server}" for server in s.bootstrap_servers],
        store="rocksdb://",  # faust uses rocksdict when python-rocksdb is absent
        datadir=s.data_dir,
        topic_replication_factor=s.replication_factor,
        topic_partitions=s.default_partitions,
        producer_acks=-1,
        # A worker killed outright hands its partitions (and subscriptions) over after this.
        broker_session_timeout=s.timing.session_timeout,
        broker_heartbeat_interval=min(3.0, s.timing.session_timeout / 3),
        autodiscover=False,
        web_application_options={
            "client_max_size": s.limits.max_request_bytes,
        },
    )


app = create_app()
