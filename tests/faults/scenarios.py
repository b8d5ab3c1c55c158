"""The faults, each under the load of tests/faults/harness.py, written once for the fault
tests (short) and scripts/soak (minutes).

Each scenario starts a fresh `Load` (topics and a key of its own) on a `Rig` (a cluster
of three brokers, RF 3, min.insync.replicas 2, and a fleet with replication 3), breaks
something, mends it, stops the load, and returns what the load saw. It leaves the rig as
it found it: every broker running, the fleet's first workers serving.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.faults.harness import Load, LoadConfig, Report, Targets
from tests.fleet import Fleet, KafkaCluster


@dataclass
class Rig:
    cluster: KafkaCluster
    fleet: Fleet
    config: LoadConfig = field(default_factory=LoadConfig)


Breaker = Callable[[Rig, Load], Awaitable[None]]
Round = Callable[[Rig, Load, int], Awaitable[None]]  # round k of a repeated fault
REPLICATION = {"AGENTBUS_REPLICATION_FACTOR": "3"}  # as scripts/fleet sets it on three brokers


@contextmanager
def running_rig(
    kafka_home: Path, kafka_port: int, fleet_dir: Path, workers: int = 2, base_port: int | None = None
) -> Iterator[Rig]:
    """A cluster of three brokers in kafka_home from kafka_port on, and a fleet on it whose
    workers start from empty data dirs; both stopped at the end."""
    cluster = KafkaCluster(kafka_home, kafka_port)
    try:
        bootstrap = cluster.up()
        fleet = Fleet(bootstrap, fleet_dir, size=workers, base_port=base_port, extra_env=REPLICATION)
        try:
            fleet.start(fresh_data=True)
            yield Rig(cluster, fleet)
        finally:
            fleet.stop()
    finally:
        cluster.down()


async def under_load(rig: Rig, scenario: str, lead_s: float, tail_s: float, breaker: Breaker) -> Report:
    """Load for lead_s, then the breaker (which breaks and mends), then tail_s more of load;
    then the check against the log."""
    running = [rig.fleet.workers[i].url for i in rig.fleet.running()]  # a churn's removed ones are not
    load = Load(Targets(running), rig.fleet.admin_key, rig.config)
    await load.prepare()
    await load.start()
    try:
        await asyncio.sleep(lead_s)
        await breaker(rig, load)
        load.note(f"{tail_s:.0f}s more load")
        await asyncio.sleep(tail_s)
    finally:
        await load.stop()
        load.note("load stopped, messages under way settled")
    return await load.verify(rig.cluster.bootstrap, scenario)


def repeated(seconds: float, up_s: float, one_round: Round) -> Breaker:
    """A breaker that runs one_round (break, wait, mend) once, then again after up_s of
    load while that starts before `seconds` are over."""

    async def breaker(rig: Rig, load: Load) -> None:
        deadline = time.monotonic() + seconds
        for k in itertools.count():
            await one_round(rig, load, k)
            if time.monotonic() + up_s >= deadline:
                return
            await asyncio.sleep(up_s)

    return breaker


# --- broker kill ------------------------------------------------------------------------


def broker_kills(seconds: float, down_s: float, up_s: float) -> Breaker:
    """kill -9 the broker leading the most partitions, keep it down down_s, start it again
    on its data (`scripts/kafka start`) and give it up_s; again until `seconds` are over."""

    async def one_round(rig: Rig, load: Load, k: int) -> None:
        node = await busiest_leader(rig.cluster.bootstrap)
        rig.cluster.kill(node)
        load.note(f"kill -9 broker node{node} (:{rig.cluster.node_port(node)})")
        stuck: list[str] = []
        failover = asyncio.create_task(note_failover(rig.cluster.bootstrap, node, load, stuck))
        await asyncio.sleep(down_s)
        if not failover.done():
            failover.cancel()
            load.note(f"still led by node{node} or leaderless when it is started again: {stuck[:5]}")
        started = time.monotonic()
        await asyncio.to_thread(rig.cluster.start)
        load.note(f"broker node{node} started again on its data in {time.monotonic() - started:.0f}s")

    return repeated(seconds, up_s, one_round)


async def note_failover(bootstrap: str, node: int, load: Load, stuck: list[str]) -> None:
    """Note when every partition has a leader again that is not the killed node (the
    controller fenced it and moved its leaders), as the live brokers' metadata says: a
    fleet that stays unavailable after that waits for something else. stuck: the
    partitions still waiting at the last look."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        while True:
            await consumer._client.force_metadata_update()
            metadata = consumer._client.cluster
            stuck[:] = [
                f"{topic}-{p}"
                for topic in metadata.topics(exclude_internal_topics=False)
                for p in metadata.partitions_for_topic(topic) or ()
                if metadata.leader_for_partition(TopicPartition(topic, p)) in (node, -1, None)
            ]
            if not stuck:
                load.note(f"every partition led by a live broker again (node{node} fenced)")
                return
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()


async def busiest_leader(bootstrap: str) -> int:
    """The node that leads the most partitions of the cluster (the bus's logs, the load's
    topics, Kafka's transaction and offset logs): killing it moves the most leaders."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        metadata = consumer._client.cluster
        leaders: Counter[int] = Counter()
        for topic in metadata.topics(exclude_internal_topics=False):
            for partition in metadata.partitions_for_topic(topic) or ():
                leader = metadata.leader_for_partition(TopicPartition(topic, partition))
                if leader is not None and leader >= 0:
                    leaders[leader] += 1
        return leaders.most_common(1)[0][0]
    finally:
        await consumer.stop()


# --- worker kill and restart -----------------------------------------------------------


def worker_restarts(seconds: float, down_s: float, up_s: float) -> Breaker:
    """kill -9 a worker (the first ones in turn), leave it down down_s, start it again on
    its data dir and give it up_s once it is ready; again until `seconds` are over. It
    stays among the targets all along: clients find it refusing, then answering 503
    not_ready, and go to another."""

    async def one_round(rig: Rig, load: Load, k: int) -> None:
        index = k % len(load.targets.urls)
        rig.fleet.kill(index)
        load.note(f"kill -9 worker {rig.fleet.workers[index].url}")
        await asyncio.sleep(down_s)
        started = time.monotonic()
        await asyncio.to_thread(rig.fleet.restart, index)
        load.note(f"worker {index} restarted on its data dir, ready after {time.monotonic() - started:.1f}s")

    return repeated(seconds, up_s, one_round)


# --- owner pause -----------------------------------------------------------------------


def owner_pauses(seconds: float, pause_s: float, up_s: float) -> Breaker:
    """SIGSTOP a worker (it owns publish-ids partitions, as every worker does) for pause_s,
    longer than the session timeout so its partitions move, then SIGCONT: its stale
    transactions must be fenced, nothing written twice. Again until `seconds` are over."""

    async def one_round(rig: Rig, load: Load, k: int) -> None:
        index = k % len(load.targets.urls)
        rig.fleet.pause(index)
        load.note(f"SIGSTOP worker {rig.fleet.workers[index].url} for {pause_s:.0f}s")
        try:
            await asyncio.sleep(pause_s)
        finally:
            rig.fleet.resume(index)
        load.note(f"SIGCONT worker {index}")

    return repeated(seconds, up_s, one_round)


# --- rebalance churn -------------------------------------------------------------------


def churn(seconds: float, step_s: float, seed: int = 0) -> Breaker:
    """For `seconds`: every step_s add a worker (empty data dir, a target once ready), then
    remove one (any worker but the first, by SIGTERM and kill -9 in turn), so the group
    rebalances every step. Ends with the fleet's first workers only."""

    async def breaker(rig: Rig, load: Load) -> None:
        pick = random.Random(seed)
        first = len(rig.fleet.workers)
        deadline = time.monotonic() + seconds
        removals = 0
        while time.monotonic() < deadline:
            index = await asyncio.to_thread(rig.fleet.add)
            load.add_target(rig.fleet.workers[index].url)
            load.note(f"added worker {rig.fleet.workers[index].url}")
            await asyncio.sleep(step_s)
            candidates = [i for i in rig.fleet.running() if i >= first or pick.random() < 0.3]
            await remove_worker(rig, load, pick.choice(candidates), graceful=removals % 2 == 0)
            removals += 1
            await asyncio.sleep(step_s)
            note_rss(rig, load, removals)
        for index in rig.fleet.running():
            if index >= first:
                await remove_worker(rig, load, index, graceful=True)
        for index in range(first):
            if index not in rig.fleet.running():
                await asyncio.to_thread(rig.fleet.restart, index)
                load.add_target(rig.fleet.workers[index].url)
                load.note(f"worker {index} restarted on its data dir")

    return breaker


def note_rss(rig: Rig, load: Load, removals: int) -> None:
    """The RSS of the first worker, which churn never stops: it must not grow with the
    number of rebalances (two a step: an add and a removal)."""
    process = rig.fleet.workers[0].process
    if process is None:
        return
    with open(f"/proc/{process.pid}/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    load.note(f"after {2 * removals} rebalances: worker 0 RSS {kib / 1024:.1f} MiB")


async def remove_worker(rig: Rig, load: Load, index: int, graceful: bool) -> None:
    url = rig.fleet.workers[index].url
    if graceful:
        load.note(f"SIGTERM worker {url}")
        took = await asyncio.to_thread(rig.fleet.terminate, index)
        load.note(f"worker {url} exited after {took:.1f}s")
    else:
        rig.fleet.kill(index)
        load.note(f"kill -9 worker {url}")
    load.remove_target(url)
