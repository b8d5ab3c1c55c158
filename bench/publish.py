"""Publish benchmark: what the HTTP bus costs compared with producing to Kafka directly.

One run measures four modes against the same broker, each on its own fresh bus
topic (3 partitions, created through the API and deleted at the end):

  raw        aiokafka producer (acks=all, idempotent, linger_ms=2) writing straight to
             the bus topic's Kafka topic. C tasks each send one record and await its
             delivery, so latency is send() -> delivery acknowledged.
  raw-batch  the same producer; C tasks each queue S records and await them together.
  single     POST /v1/publish, one record per request, C concurrent clients.
  batch      POST /v1/publish/batch, S records per request, C concurrent clients.

Every mode sends the same JSON payload (B bytes once encoded) under distinct keys.
The bus also stamps a few headers on each record; raw mode sends none. HTTP requests
go round-robin over the workers through one keep-alive connection pool. Each mode
first sends a short, uncounted warm-up; afterwards the sum of the topic's Kafka end
offsets must equal warm-up + N, otherwise the run fails loudly (exit status 1).

Reported per mode: records, seconds, msgs/s, p50/p99 latency of one send (raw) or
one request (single, batch), and msgs/s as a ratio to the raw mode doing the same
unit of work per await (single / raw, batch / raw-batch).

Needs a running broker and fleet: `scripts/kafka up && scripts/fleet up --workers 2`.

    python bench/publish.py [--workers URL,URL] [--bootstrap HOST:PORT]
        [--records N] [--payload-bytes B] [--concurrency C] [--batch-size S]
        [--modes raw,raw-batch,single,batch] [--json-out FILE]

Each mode's row also shows the machine's 1-minute load average as the mode ended
(os.getloadavg()): the workers, the broker and this client share the cores, so a
figure means little without it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from options import add_fleet_options, worker_urls

NAMESPACE = "bench"
TENANT = "t1"
PARTITIONS = 3
WARMUP_RECORDS = 500
MAX_BATCH = 500  # the bus's default max_batch_records
REQUEST_TIMEOUT_S = 10.0  # one HTTP request, or one raw send until delivered
RUN_BUDGET_S = 100.0  # all warm-ups and measurements together; cleanup comes after
ADMIN_TIMEOUT_S = 20.0  # topic create/delete: both wait for metadata to replicate
MAX_ERRORS_SHOWN = 5
MODES = ("raw", "raw-batch", "single", "batch")
BASELINE = {"single": "raw", "batch": "raw-batch"}  # the raw mode doing the same unit of work

# Sends records [first, first + count) and returns once all are acknowledged.
Sender = Callable[[int, int], Awaitable[None]]


class BenchError(RuntimeError):
    """A failure that makes the run's figures meaningless. A RuntimeError, as the other
    benches' failed requests are: conversations.lanes counts it as one failed request."""


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    records: int
    payload_bytes: int
    concurrency: int
    batch_size: int
    json_out: str | None
    modes: tuple[str, ...] = MODES


@dataclass(frozen=True)
class BusTopic:
    ref: str  # namespace/tenant/name, as the publish API wants it
    kafka_topic: str
    partitions: int


@dataclass
class Run:
    """Raw observations of one driven phase."""

    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per send
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModeResult:
    mode: str
    records: int
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    ratio_to_raw: float
    errors: int
    load_1m: float  # the machine's 1-minute load average as the mode ended


# --- inputs -----------------------------------------------------------------------


def auth_headers() -> dict[str, str]:
    """The key to send: AGENTBUS_KEY, else the admin key scripts/fleet keeps in .data/admin-key."""
    key = os.environ.get("AGENTBUS_KEY")
    if not key:
        path = Path(__file__).resolve().parent.parent / ".data" / "admin-key"
        key = path.read_text().strip() if path.exists() else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_fleet_options(p)
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--payload-bytes", type=int, default=256)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument(
        "--modes",
        default=",".join(MODES),
        help="comma-separated modes to run, in this order (a ratio needs its raw mode in the run)",
    )
    a = p.parse_args(argv)
    workers = worker_urls(a.workers)
    if not workers:
        p.error("--workers needs at least one URL")
    if a.records < 1 or a.concurrency < 1 or a.payload_bytes < 16:
        p.error("--records and --concurrency must be >= 1, --payload-bytes >= 16")
    if not 1 <= a.batch_size <= MAX_BATCH:
        p.error(f"--batch-size must be between 1 and {MAX_BATCH}")
    modes = tuple(m for m in MODES if m in {m.strip() for m in a.modes.split(",")})
    if not modes or set(a.modes.split(",")) - set(MODES):
        p.error(f"--modes takes a comma-separated subset of {','.join(MODES)}")
    return Config(
        workers, a.bootstrap, a.records, a.payload_bytes, a.concurrency, a.batch_size, a.json_out, modes
    )


def make_payload(size: int) -> dict[str, Any]:
    """A JSON object whose compact encoding is exactly `size` bytes (the bus encodes compactly)."""
    frame = len(encode({"pad": ""}))
    return {"pad": "x" * (size - frame)}


def encode(payload: Any) -> bytes:
    # Same encoding as the bus's, so raw mode writes byte-identical values.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def record_key(index: int) -> str:
    return f"k{index}"


# --- driving load -------------------------------------------------------------------


async def drive(send: Sender, first: int, total: int, unit: int, concurrency: int) -> Run:
    """Send records [first, first + total) in chunks of `unit` from `concurrency` lanes."""
    chunks = iter(range(first, first + total, unit))  # shared: each chunk goes to one lane
    run = Run(seconds=0.0)

    async def lane() -> None:
        for start in chunks:
            count = min(unit, first + total - start)
            began = time.perf_counter()
            try:
                await asyncio.wait_for(send(start, count), REQUEST_TIMEOUT_S)
            # ValueError: a proxy or crash page that is not JSON.
            except (BenchError, KafkaError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                run.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            run.latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    run.seconds = time.perf_counter() - began
    return run


def raw_sender(producer: AIOKafkaProducer, topic: BusTopic, value: bytes) -> Sender:
    """Queue `count` records, then wait for all of them: what the bus does per request."""

    async def send(start: int, count: int) -> None:
        deliveries = [
            await producer.send(topic.kafka_topic, value=value, key=record_key(i).encode())
            for i in range(start, start + count)
        ]
        await asyncio.gather(*deliveries)

    return send


def http_sender(
    session: aiohttp.ClientSession, workers: list[str], path: str, body: Callable[[int, int], dict[str, Any]]
) -> Sender:
    """A sender POSTing `body(start, count)` to the workers in turn; checks every receipt."""
    turn = itertools.cycle(workers)

    async def send(start: int, count: int) -> None:
        async with session.post(next(turn) + path, json=body(start, count)) as resp:
            answer = await resp.json(content_type=None)
            if resp.status != 200:
                raise BenchError(f"HTTP {resp.status} from {resp.url}: {answer}")
        receipts = answer["results"] if "results" in answer else [answer]
        if len(receipts) != count:
            raise BenchError(f"{len(receipts)} receipts for {count} records")

    return send


def single_body(topic: BusTopic, payload: dict[str, Any]) -> Callable[[int, int], dict[str, Any]]:
    def body(start: int, count: int) -> dict[str, Any]:
        return {"topic": topic.ref, "key": record_key(start), "payload": payload}

    return body


def batch_body(topic: BusTopic, payload: dict[str, Any]) -> Callable[[int, int], dict[str, Any]]:
    def body(start: int, count: int) -> dict[str, Any]:
        return {
            "records": [
                {"topic": topic.ref, "key": record_key(i), "payload": payload}
                for i in range(start, start + count)
            ]
        }

    return body


async def measure(send: Sender, cfg: Config, unit: int) -> Run:
    """An uncounted warm-up, then the measured N records."""
    warmup = await drive(send, 0, WARMUP_RECORDS, unit, cfg.concurrency)
    if warmup.errors:
        raise BenchError(f"warm-up failed: {warmup.errors[0]}")
    return await drive(send, WARMUP_RECORDS, cfg.records, unit, cfg.concurrency)


# --- the bus API: topics and health -----------------------------------------------


async def check_health(session: aiohttp.ClientSession, workers: list[str]) -> None:
    for w in workers:
        try:
            async with session.get(f"{w}/healthz") as resp:
                if resp.status != 200:
                    raise BenchError(f"{w}/healthz answered {resp.status}: {await resp.text()}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BenchError(f"worker {w} is not reachable ({exc}); is the fleet running?") from exc


async def create_topic(
    session: aiohttp.ClientSession, worker: str, name: str, partitions: int = PARTITIONS
) -> BusTopic:
    spec = {"namespace": NAMESPACE, "tenant": TENANT, "name": name, "partitions": partitions}
    async with session.post(f"{worker}/v1/topics", json=spec, timeout=admin_timeout()) as resp:
        answer = await resp.json(content_type=None)
        if resp.status != 201:
            raise BenchError(f"creating topic {name}: HTTP {resp.status}: {answer}")
    return BusTopic(f"{NAMESPACE}/{TENANT}/{name}", answer["kafka_topic"], answer["partitions"])


async def delete_topic(session: aiohttp.ClientSession, worker: str, topic: BusTopic) -> None:
    """Best effort: a failed delete is reported but does not hide the run's result."""
    try:
        async with session.delete(f"{worker}/v1/topics/{topic.ref}", timeout=admin_timeout()) as resp:
            if resp.status != 200:
                print(
                    f"warning: deleting {topic.ref}: HTTP {resp.status}: {await resp.text()}", file=sys.stderr
                )
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"warning: deleting {topic.ref} failed: {exc!r}", file=sys.stderr)


def admin_timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_S)


# --- verification and results ----------------------------------------------------


async def stored_records(consumer: AIOKafkaConsumer, topic: BusTopic) -> int:
    """Records in the topic: the sum of its partitions' end offsets (no compaction here)."""
    partitions = [TopicPartition(topic.kafka_topic, p) for p in range(topic.partitions)]
    ends = await asyncio.wait_for(consumer.end_offsets(partitions), REQUEST_TIMEOUT_S)
    return sum(ends.values())


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN when there are no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summarise(mode: str, cfg: Config, run: Run, raw_rate: float | None) -> ModeResult:
    rate = cfg.records / run.seconds
    return ModeResult(
        mode=mode,
        records=cfg.records,
        seconds=round(run.seconds, 3),
        msgs_per_s=round(rate, 1),
        p50_ms=round(percentile(run.latencies, 50) * 1000, 2),
        p99_ms=round(percentile(run.latencies, 99) * 1000, 2),
        ratio_to_raw=round(rate / raw_rate, 3) if raw_rate else math.nan if mode in BASELINE else 1.0,
        errors=len(run.errors),
        load_1m=round(os.getloadavg()[0], 2),
    )


def check_mode(mode: str, run: Run, stored: int, expected: int) -> list[str]:
    """The problems that make a mode's figures untrustworthy; empty when it is sound."""
    problems = []
    if run.errors:
        problems.append(f"{mode}: {len(run.errors)} sends failed, the first ones:")
        problems += [f"{mode}:   {e}" for e in run.errors[:MAX_ERRORS_SHOWN]]
    if stored != expected:
        problems.append(f"{mode}: topic holds {stored} records, expected {expected}")
    return problems


def print_table(results: list[ModeResult]) -> None:
    header = f"{'mode':<10}{'records':>9}{'seconds':>9}{'msgs/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
    header += f"{'x raw':>8}{'load':>7}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.mode:<10}{r.records:>9}{r.seconds:>9.2f}{r.msgs_per_s:>11.0f}"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.ratio_to_raw:>8.3f}{r.load_1m:>7.2f}"
        )


def write_json(path: str, cfg: Config, results: list[ModeResult]) -> None:
    config = {k: v for k, v in asdict(cfg).items() if k != "json_out"}
    config["warmup_records"] = WARMUP_RECORDS
    with open(path, "w") as f:
        json.dump({"config": config, "results": [asdict(r) for r in results]}, f, indent=2)
        f.write("\n")


# --- the run --------------------------------------------------------------------


async def run_modes(
    cfg: Config, session: aiohttp.ClientSession, topics: dict[str, BusTopic]
) -> tuple[list[ModeResult], list[str]]:
    """Warm up, measure and verify each mode in turn; returns results and problems."""
    payload = make_payload(cfg.payload_bytes)
    producer = AIOKafkaProducer(
        bootstrap_servers=cfg.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=int(REQUEST_TIMEOUT_S * 1000),
    )
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap, group_id=None, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        value = encode(payload)
        senders: dict[str, Callable[[BusTopic], Sender]] = {
            "raw": lambda topic: raw_sender(producer, topic, value),
            "raw-batch": lambda topic: raw_sender(producer, topic, value),
            "single": lambda topic: http_sender(
                session, cfg.workers, "/v1/publish", single_body(topic, payload)
            ),
            "batch": lambda topic: http_sender(
                session, cfg.workers, "/v1/publish/batch", batch_body(topic, payload)
            ),
        }
        units = {"raw": 1, "raw-batch": cfg.batch_size, "single": 1, "batch": cfg.batch_size}
        # Each bus mode is compared with raw Kafka doing the same unit of work per await:
        # single with one record per send, batch with batch_size records per gather.
        plans = [(mode, senders[mode](topics[mode]), units[mode], BASELINE.get(mode)) for mode in cfg.modes]
        results: list[ModeResult] = []
        problems: list[str] = []
        rates: dict[str, float] = {}
        for mode, send, unit, baseline in plans:
            run = await measure(send, cfg, unit)
            stored = await stored_records(consumer, topics[mode])
            problems += check_mode(mode, run, stored, WARMUP_RECORDS + cfg.records)
            result = summarise(mode, cfg, run, rates.get(baseline) if baseline else None)
            rates[mode] = result.msgs_per_s
            results.append(result)
        return results, problems
    finally:
        await producer.stop()
        await consumer.stop()


async def bench(cfg: Config) -> int:
    suffix = secrets.token_hex(3)  # fresh topics per run, so reruns never collide
    # The pool must hold a connection per concurrent client, or requests queue client-side.
    connector = aiohttp.TCPConnector(limit=cfg.concurrency * 2)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=auth_headers()) as session:
        await check_health(session, cfg.workers)
        topics: dict[str, BusTopic] = {}
        try:
            for mode in cfg.modes:
                topics[mode] = await create_topic(session, cfg.workers[0], f"pub-{suffix}-{mode}")
            try:
                async with asyncio.timeout(RUN_BUDGET_S):
                    results, problems = await run_modes(cfg, session, topics)
            except TimeoutError:
                raise BenchError(f"the run took over {RUN_BUDGET_S:.0f} s; gave up") from None
        finally:
            for topic in topics.values():
                await delete_topic(session, cfg.workers[0], topic)
    print_table(results)
    if cfg.json_out:
        write_json(cfg.json_out, cfg, results)
    return exit_status(problems, "sends failed or records are missing")


def exit_status(problems: Sequence[str], failed: str) -> int:
    """A bench's exit status: 1 (each problem printed under what failed) or 0."""
    if not problems:
        return 0
    print(f"\n!!! BENCHMARK FAILED: {failed} !!!", file=sys.stderr)
    for p in problems:
        print(f"!!! {p}", file=sys.stderr)
    return 1


def run_bench(run: Coroutine[Any, Any, int], errors: tuple[type[BaseException], ...]) -> int:
    """Run a bench; 2 when one of `errors` aborts it (a broker away, a fleet not there)."""
    try:
        return asyncio.run(run)
    except errors as exc:
        print(f"\n!!! BENCHMARK ABORTED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run_bench(bench(parse_args(argv)), (BenchError, KafkaError, TimeoutError))


if __name__ == "__main__":
    sys.exit(main())
