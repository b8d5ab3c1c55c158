"""The Faust app: one per worker process. Tables and agents attach to it on import."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import faust

from bus.kafka import faust_patches
from bus.kafka.gateway import declare_topics
from bus.settings import get_settings

__all__ = ["app"]

log = logging.getLogger(__name__)
_BIND_THE_HOST = "agentbus:web-host"  # web_bind until start: then the --web-host given


class BusApp(faust.App):  # type: ignore[misc]
    """The Faust app, creating its internal topics before its consumer first subscribes.

    Faust declares internal topics while its consumer group forms; on a fresh broker the
    first assignment can run before a new topic is in the metadata, and Faust then skips
    that topic ("Ignoring missing topic") until some later rebalance, so its processor
    never runs. Creating every command and changelog topic first closes that race.
    """

    # Run first when the worker stops, while Faust's consumer and tables still work: the
    # assembly stops taking requests and lets those in flight finish here.
    before_stop: list[Callable[[], Awaitable[None]]]

    async def on_stop(self) -> None:
        for hook in getattr(self, "before_stop", ()):
            await hook()
        await super().on_stop()

    async def on_first_start(self) -> None:
        await super().on_first_start()
        if self.conf.web_bind == _BIND_THE_HOST:
            # Listen on exactly the host the worker was given (--web-host), not on every
            # interface; --web-bind still says otherwise when given.
            self.conf.web_bind = self.conf.web_host
        specs: list[tuple[str, int, dict[str, str]]] = [
            (agent.channel.get_topic_name(), agent.channel.partitions or 1, {})
            for agent in self.agents.values()
        ] + [
            (table.changelog_topic.get_topic_name(), table.partitions or 1, {"cleanup.policy": "compact"})
            for table in self.tables.values()
        ]
        await declare_topics(get_settings(), specs)


def create_app() -> faust.App:
    s = get_settings()
    faust_patches.apply(get_settings().timing.processor_fetch_wait)
    Path(s.data_dir).parent.mkdir(parents=True, exist_ok=True)  # faust makes only the leaf
    return BusApp(
        s.app_id,
        broker=[f"kafka://{server}" for server in s.bootstrap_servers],
        store="rocksdb://",  # faust uses rocksdict when python-rocksdb is absent
        datadir=s.data_dir,
        topic_replication_factor=s.replication_factor,
        topic_partitions=s.default_partitions,
        producer_acks=-1,
        producer_linger=s.table_linger_ms / 1000,
        # A worker killed outright hands its partitions (and subscriptions) over after this.
        broker_session_timeout=s.timing.session_timeout,
        broker_heartbeat_interval=min(3.0, s.timing.session_timeout / 3),
        autodiscover=False,
        # No leader topic: the bus elects no leader. Faust's group leader never found that
        # topic in its metadata when it assigned ("Ignoring missing topic"), so the first
        # metadata refresh that listed it (the one a broker kill forces) looked like a new
        # topic and rebalanced the whole group in the middle of the outage.
        topic_disable_leader=True,
        web_bind=_BIND_THE_HOST,
        web_application_options={
            "client_max_size": s.limits.max_request_bytes,
        },
    )


app = create_app()
