"""Heartbeat benchmark: how many heartbeats per second a fleet absorbs.

Registers A agents (heartbeat interval I) in a fresh tenant, then C concurrent clients
POST /v1/agents/.../heartbeat, cycling over the agents, so each agent beats every A/rate
seconds: with the defaults (1,000 agents, 5 s) every few seconds, as agents beating at
their interval would, and every beat is a record the processor applies to the view (the
view skips only beats less than a quarter interval apart). Two modes, each after an
uncounted warm-up:

  any     each beat goes to the workers in turn, as a client that knows no better would:
          a beat reaching a worker that does not own the agent is forwarded to the owner.
  owner   each beat goes straight to the agent's owner (learned from the X-Agentbus-Worker
          header of a GET), so no beat is forwarded: the cost of the beat itself.

A beat is answered (202) once Kafka has its record on the heartbeats log; the owner's
processor applies it to the view afterwards. Reported per mode: beats, seconds, beats/s,
p50/p99 latency of one request, errors, and how long after the mode's last beat the
processors had committed every record of the heartbeats log (their backlog: a fleet
absorbs the rate only if this stays short). Afterwards the heartbeats topic must have
grown by at least every accepted beat (checked through Kafka's end offsets), every agent
must show a last heartbeat from the run, and the agents are deleted.

Needs a running broker and fleet: `scripts/kafka up && scripts/fleet up --workers 2`.

    python bench/agents.py [--workers URL,URL] [--bootstrap HOST:PORT] [--prefix P]
        [--agents A] [--interval-ms I] [--beats N] [--concurrency C] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from options import add_fleet_options, worker_urls

# bench/publish.py: found next to this file when run as `python bench/agents.py`.
from publish import auth_headers

NAMESPACE = "bench"
WARMUP_BEATS = 500
REQUEST_TIMEOUT_S = 10.0
TAIL_READ = 50  # offsets read back from each partition's end to find its last record
DRAIN_LIMIT_S = 120.0  # for the processors to commit every beat, after the last one
MAX_ERRORS_SHOWN = 5


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    prefix: str
    agents: int
    interval_ms: int
    beats: int
    concurrency: int
    json_out: str | None


@dataclass
class Run:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModeResult:
    mode: str
    beats: int
    seconds: float
    beats_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    drained_s: float | None  # after the last beat, until the processors had committed every record


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_fleet_options(p, prefix=True)
    p.add_argument("--agents", type=int, default=1_000)
    p.add_argument("--interval-ms", type=int, default=5_000)
    p.add_argument("--beats", type=int, default=20_000, help="per mode")
    p.add_argument("--concurrency", type=int, default=32)
    a = p.parse_args(argv)
    workers = worker_urls(a.workers)
    if not workers or a.agents < 1 or a.beats < 1 or a.concurrency < 1:
        p.error("need workers, and --agents, --beats, --concurrency >= 1")
    return Config(workers, a.bootstrap, a.prefix, a.agents, a.interval_ms, a.beats, a.concurrency, a.json_out)


async def request(http: aiohttp.ClientSession, method: str, url: str, body: Any, expect: int) -> Any:
    async with http.request(method, url, json=body) as r:
        answer = await r.json(content_type=None)
        if r.status != expect:
            raise RuntimeError(f"{method} {url}: {r.status} {answer}")
        return answer


async def register(http: aiohttp.ClientSession, cfg: Config, tenant: str) -> dict[str, str]:
    """Register the agents; agent path -> the URL of the worker that owns it."""
    owners: dict[str, str] = {}
    room = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        body = {
            "namespace": NAMESPACE,
            "tenant": tenant,
            "id": f"a{i}",
            "heartbeat_interval_ms": cfg.interval_ms,
        }
        path = f"/v1/agents/{NAMESPACE}/{tenant}/a{i}"
        async with room:
            await request(http, "POST", f"{cfg.workers[i % len(cfg.workers)]}/v1/agents", body, 201)
            async with http.get(cfg.workers[0] + path) as r:
                owners[path] = r.headers.get("X-Agentbus-Worker", cfg.workers[0]).rstrip("/")

    await asyncio.gather(*(one(i) for i in range(cfg.agents)))
    return owners


async def drive(http: aiohttp.ClientSession, targets: list[str], total: int, concurrency: int) -> Run:
    """POST total heartbeats to the target URLs in turn, from `concurrency` lanes."""
    work = iter(itertools.islice(itertools.cycle(targets), total))  # shared by the lanes
    run = Run()

    async def lane() -> None:
        for url in work:
            began = time.perf_counter()
            try:
                async with http.post(url, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as r:
                    await r.read()
                    if r.status != 202:
                        run.errors.append(f"{r.status} from {url}")
                        continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                run.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            run.latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    run.seconds = time.perf_counter() - began
    return run


def percentile(samples: list[float], pct: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def drained_after(cfg: Config, topic: str, last_beat: float) -> float | None:
    """Seconds from last_beat until the fleet's group committed the topic's end offsets;
    None if it had not after DRAIN_LIMIT_S. A partition no beat went to is drained (the
    group commits nothing there: with few agents, some partitions get none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap, isolation_level="read_committed")
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap)
    await consumer.start()
    await admin.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()]
        ends = await after_last_records(consumer, tps)
        while time.perf_counter() - last_beat < DRAIN_LIMIT_S:
            committed = await admin.list_consumer_group_offsets(cfg.prefix)  # the Faust app's group
            if all(ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp]) for tp in tps):
                return round(time.perf_counter() - last_beat, 1)
            await asyncio.sleep(0.2)
        return None
    finally:
        await admin.close()
        await consumer.stop()


async def after_last_records(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Per partition, the offset after its last record: what a group that processed it all
    commits. The end offset can be past it: a transaction's commit marker (liveness
    transitions are written in transactions) takes an offset no record has, and a group
    never commits beyond its last record, so waiting for the end waited forever."""
    ends = await consumer.end_offsets(tps)
    found = {tp: 0 for tp in tps}
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, max(0, ends[tp] - TAIL_READ))
    while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
        for tp, records in (await consumer.getmany(timeout_ms=500)).items():
            found[tp] = max([found[tp], *(r.offset + 1 for r in records)])
    return found


def result(mode: str, run: Run, drained_s: float | None) -> ModeResult:
    beats = len(run.latencies)
    return ModeResult(
        mode=mode,
        beats=beats,
        seconds=round(run.seconds, 2),
        beats_per_s=round(beats / run.seconds, 1) if run.seconds else 0.0,
        p50_ms=round(percentile(run.latencies, 50) * 1000, 1),
        p99_ms=round(percentile(run.latencies, 99) * 1000, 1),
        errors=len(run.errors),
        drained_s=drained_s,
    )


async def log_size(bootstrap: str, topic: str) -> int:
    """The sum of the topic's end offsets: records ever written to it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # as tests/helpers.py: learn every topic
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise RuntimeError(f"no topic {topic} (is --prefix the fleet's?)")
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def run(cfg: Config) -> int:
    tenant = f"hb-{uuid.uuid4().hex[:8]}"
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=cfg.concurrency * 2)
    async with aiohttp.ClientSession(headers=auth_headers(), timeout=timeout, connector=connector) as http:
        print(f"registering {cfg.agents} agents in {NAMESPACE}/{tenant} ...", file=sys.stderr)
        owners = await register(http, cfg, tenant)
        paths = list(owners)
        any_worker = [f"{cfg.workers[i % len(cfg.workers)]}{p}/heartbeat" for i, p in enumerate(paths)]
        to_owner = [f"{owners[p]}{p}/heartbeat" for p in paths]
        heartbeats_topic = f"{cfg.prefix}-heartbeats"
        before = await log_size(cfg.bootstrap, heartbeats_topic)
        started_ms = int(time.time() * 1000)
        results, accepted = [], 0
        for mode, targets in (("any", any_worker), ("owner", to_owner)):
            warm = await drive(http, targets, WARMUP_BEATS, cfg.concurrency)
            measured = await drive(http, targets, cfg.beats, cfg.concurrency)
            drained = await drained_after(cfg, heartbeats_topic, time.perf_counter())
            accepted += len(warm.latencies) + len(measured.latencies)
            results.append(result(mode, measured, drained))
            for error in measured.errors[:MAX_ERRORS_SHOWN]:
                print(f"  {mode}: {error}", file=sys.stderr)
        grown = await log_size(cfg.bootstrap, heartbeats_topic) - before
        stale = []
        for path in paths:
            found = await request(http, "GET", cfg.workers[0] + path, None, 200)
            beat_at = found["last_heartbeat_at"]
            if beat_at is None or _ms(beat_at) < started_ms:
                stale.append(path)
        for i, path in enumerate(paths):
            await request(http, "DELETE", cfg.workers[i % len(cfg.workers)] + path, None, 200)

    head = f"{'mode':<6} {'beats':>7} {'s':>7} {'beats/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    print(f"\n{head} {'drained s':>9}")
    for r in results:
        print(
            f"{r.mode:<6} {r.beats:>7} {r.seconds:>7} {r.beats_per_s:>9} {r.p50_ms:>8} {r.p99_ms:>8}", end=""
        )
        print(f" {r.errors:>6} {'-' if r.drained_s is None else r.drained_s:>9}")
    print(f"\nheartbeats log grew by {grown} records for {accepted} accepted beats")
    if cfg.json_out:
        document = json.dumps({"config": asdict(cfg), "results": [asdict(r) for r in results]}, indent=2)
        await asyncio.to_thread(Path(cfg.json_out).write_text, document)
    undrained = [r.mode for r in results if r.drained_s is None]
    failed = grown < accepted or bool(stale) or bool(undrained) or any(r.errors for r in results)
    if undrained:
        print(f"FAILED: the processors were behind {DRAIN_LIMIT_S:.0f} s after {undrained}", file=sys.stderr)
    if stale:
        print(f"FAILED: {len(stale)} agents show no beat from this run, e.g. {stale[:3]}", file=sys.stderr)
    if grown < accepted:
        print("FAILED: fewer records on the heartbeats log than accepted beats", file=sys.stderr)
    return 1 if failed else 0


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
