"""Conversation benchmark: appends/s and replay records/s, against raw Kafka in the same run.

  raw         aiokafka producer (acks=all, idempotent) into a topic of its own shaped like
              the conversations log (never the fleet's own log), C lanes each sending one keyed
              record and awaiting it: the Kafka work of one append.
  append      POST .../messages, C lanes, each appending to its own conversation
              (C conversations), requests spread over the workers.
  append-one  the same C lanes all appending to ONE conversation: the owner numbers its
              messages one at a time, so this shows one conversation's ceiling.
  raw-read    aiokafka consumer reading the conversations log partition of the replayed
              conversation from its start: the Kafka work of a replay.
  replay      GET .../messages?limit=1000, page by page through the `append-one`
              conversation (every page read back from Kafka by its owner).

Checks: every append answered 201 with a sequence number; append-one's numbers are
exactly 1..N; the replay returns exactly 1..N in order. Needs a running broker and fleet:
`scripts/kafka up && scripts/fleet up --workers 2`.

    python bench/conversations.py [--workers URL,URL] [--bootstrap HOST:PORT]
        [--records N] [--concurrency C] [--json-out FILE]
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
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2
from options import add_fleet_options

# bench/publish.py: found next to this file when run as `python bench/conversations.py`.
from publish import auth_headers, check_health, percentile

NAMESPACE, TENANT = "bench", "t1"
STATE_PARTITIONS = 12  # AGENTBUS_STATE_PARTITIONS of the fleet
RETRIABLE = ("owner_moved", "not_ready", "timeout")


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    prefix: str
    records: int
    concurrency: int
    json_out: str | None


@dataclass
class Result:
    mode: str
    records: int
    seconds: float
    rate: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    ratio: float | None = None
    errors: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_fleet_options(p, prefix=True)
    p.add_argument("--records", type=int, default=3000, help="appends per mode")
    p.add_argument("--concurrency", type=int, default=16)
    a = p.parse_args(argv)
    return Config(a.workers.split(","), a.bootstrap, a.prefix, a.records, a.concurrency, a.json_out)


async def request(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One request, retried while the bus answers a retriable 503/504."""
    for _ in range(100):
        async with session.request(method, url, json=body) as r:
            answer = await r.json(content_type=None)
            code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
            if r.status < 503 or code not in RETRIABLE:
                return r.status, answer
        await asyncio.sleep(0.3)
    raise RuntimeError(f"{method} {url} kept failing")


async def new_conversation(session: aiohttp.ClientSession, worker: str) -> str:
    conv_id = f"b{uuid.uuid4().hex[:12]}"
    body = {"namespace": NAMESPACE, "tenant": TENANT, "id": conv_id}
    status, answer = await request(session, "POST", f"{worker}/v1/conversations", body)
    if status != 201:
        raise RuntimeError(f"create conversation: {status} {answer}")
    return f"/v1/conversations/{NAMESPACE}/{TENANT}/{conv_id}"


async def lanes(count: int, total: int, send: Any) -> tuple[float, list[float], list[str]]:
    """Run `send(lane, i)` for i in [0, total) over `count` lanes; (seconds, latencies, errors)."""
    items = iter(range(total))
    latencies: list[float] = []
    errors: list[str] = []

    async def lane(n: int) -> None:
        for i in items:
            began = time.perf_counter()
            try:
                await send(n, i)
            except (RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(lane(n) for n in range(count)))
    return time.perf_counter() - began, latencies, errors


def result(mode: str, seconds: float, latencies: list[float], errors: list[str], raw: float | None) -> Result:
    rate = len(latencies) / seconds if seconds else 0.0
    return Result(
        mode,
        len(latencies),
        round(seconds, 2),
        round(rate, 1),
        round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        round(rate / raw, 2) if raw else None,
        errors[:5],
    )


async def raw_topic(cfg: Config) -> str:
    """A topic of the baseline's own, shaped like the conversations log (its partitions),
    so the raw mode never writes records the fleet's processors would have to parse."""
    topic = f"{cfg.prefix}-bench-raw-conversations"
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, STATE_PARTITIONS, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()
    return topic


async def raw_mode(cfg: Config) -> Result:
    topic = await raw_topic(cfg)
    producer = AIOKafkaProducer(
        bootstrap_servers=cfg.bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
    await producer.start()
    value = json.dumps({"kind": "message", "message": {"payload": {"text": "x" * 100}}}).encode()
    try:

        async def send(lane: int, i: int) -> None:
            await (await producer.send(topic, value=value, key=f"bench/raw/{lane}".encode()))

        seconds, latencies, errors = await lanes(cfg.concurrency, cfg.records, send)
    finally:
        await producer.stop()
    return result("raw", seconds, latencies, errors, None)


async def append_mode(
    cfg: Config, session: aiohttp.ClientSession, conversations: list[str], mode: str, raw: float
) -> tuple[Result, list[int]]:
    workers = itertools.cycle(cfg.workers)
    seqs: list[int] = []

    async def send(lane: int, i: int) -> None:
        conv = conversations[lane % len(conversations)]
        body = {"sender": "bench", "payload": {"text": "x" * 100, "i": i}}
        status, answer = await request(session, "POST", f"{next(workers)}{conv}/messages", body)
        if status != 201:
            raise RuntimeError(f"append: {status} {answer}")
        seqs.append(answer["seq"])

    seconds, latencies, errors = await lanes(cfg.concurrency, cfg.records, send)
    return result(mode, seconds, latencies, errors, raw), seqs


async def raw_read_mode(cfg: Config, conv: str) -> Result:
    key = conv.removeprefix("/v1/conversations/").encode()
    tp = TopicPartition(f"{cfg.prefix}-conversations", (murmur2(key) & 0x7FFFFFFF) % STATE_PARTITIONS)
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
        read, began = 0, time.perf_counter()
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=1000)
            read += sum(1 for r in batch.get(tp, []) if r.key == key)
        seconds = time.perf_counter() - began
    finally:
        await consumer.stop()
    return Result("raw-read", read, round(seconds, 2), round(read / seconds, 1) if seconds else 0.0)


async def replay_mode(
    cfg: Config, session: aiohttp.ClientSession, conv: str, raw: float
) -> tuple[Result, list[int]]:
    seqs: list[int] = []
    next_from: int | None = 1
    began = time.perf_counter()
    while next_from is not None:
        status, page = await request(
            session, "GET", f"{cfg.workers[0]}{conv}/messages?from_seq={next_from}&limit=1000"
        )
        if status != 200:
            raise RuntimeError(f"replay: {status} {page}")
        seqs += [m["seq"] for m in page["messages"]]
        next_from = page["next_from_seq"]
    seconds = time.perf_counter() - began
    rate = len(seqs) / seconds if seconds else 0.0
    return Result(
        "replay", len(seqs), round(seconds, 2), round(rate, 1), ratio=round(rate / raw, 2) if raw else None
    ), seqs


async def bench(cfg: Config) -> int:
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=cfg.concurrency * 2)
    async with aiohttp.ClientSession(headers=auth_headers(), timeout=timeout, connector=connector) as session:
        await check_health(session, cfg.workers)
        raw = await raw_mode(cfg)
        many = [
            await new_conversation(session, cfg.workers[i % len(cfg.workers)]) for i in range(cfg.concurrency)
        ]
        append, _ = await append_mode(cfg, session, many, "append", raw.rate)
        one = await new_conversation(session, cfg.workers[0])
        append_one, one_seqs = await append_mode(cfg, session, [one], "append-one", raw.rate)
        raw_read = await raw_read_mode(cfg, one)
        replay, replayed = await replay_mode(cfg, session, one, raw_read.rate)
    results = [raw, append, append_one, raw_read, replay]
    problems = [f"{r.mode}: {e}" for r in results for e in r.errors]
    if sorted(one_seqs) != list(range(1, cfg.records + 1)):
        problems.append("append-one: sequence numbers are not exactly 1..N")
    if replayed != list(range(1, cfg.records + 1)):
        problems.append(f"replay: got {len(replayed)} messages, not 1..{cfg.records} in order")
    print(
        f"{'mode':<11} {'records':>8} {'seconds':>8} {'msgs/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}"
    )
    for r in results:
        cells = [r.p50_ms, r.p99_ms, r.ratio]
        p50, p99, ratio = ("-" if c is None else str(c) for c in cells)
        print(f"{r.mode:<11} {r.records:>8} {r.seconds:>8} {r.rate:>9} {p50:>7} {p99:>7} {ratio:>6}")
    print("ratios: append and append-one over raw; replay over raw-read")
    if cfg.json_out:
        write_json(cfg.json_out, cfg, results)
    for p in problems:
        print("FAILED:", p, file=sys.stderr)
    return 1 if problems else 0


def write_json(path: str, cfg: Config, results: list[Result]) -> None:
    with open(path, "w") as f:
        json.dump({"config": asdict(cfg), "results": [asdict(r) for r in results]}, f, indent=2)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(bench(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
