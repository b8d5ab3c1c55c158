"""Publish → SSE reader latency: how long a record takes from a publisher to a live reader
on the other worker, compared with an aiokafka producer and consumer on the same broker.

For each offered rate R (default 1,000/s, then 2,500/s) two modes run in turn, each on
a fresh bus topic of its own (3 partitions, created through the API, deleted at the end):

  raw  an aiokafka producer (acks=all, idempotent, linger_ms=2) writes straight to the
       topic's Kafka topic; an aiokafka consumer (no group) assigned every partition from
       the beginning reads it, getmany() in a loop.
  bus  `POST /v1/publish` on worker A (the first of --workers), one record per request,
       up to --max-in-flight requests at once; a reader holds `GET /v1/subscribe/...?
       from=earliest` open on worker B (the second), and is in place (its ": subscribed
       at" comment read) before the first record is sent.

Pacing is open-loop: record k is due at k/R seconds after the start, for --seconds; a
record whose slot (or in-flight limit) comes late is sent late, so an overloaded path
shows as a lower achieved rate and a higher latency, never as a lower offered rate.
Each record's payload carries its index and its send time (`time.time()` taken just
before the send or the POST); latency = the time the reader got it minus that send time,
per record (the reader and the sender are this one process, so one clock).

Afterwards every record must have reached the reader exactly once (each index seen once,
none missing after --drain seconds) and every send must have succeeded, or the run fails
(exit status 1). Reported per rate and mode: records, the achieved send rate, the rate
the reader received at, p50/p99/max latency, and the 1-minute load average at the end of
the mode; and the targets of issue 16: bus p50 ≤ raw p50 + 1 ms, bus p99 ≤ 1.2x raw p99.

Needs a running broker and fleet: `scripts/kafka up && scripts/fleet up --workers 2`.

    python bench/sse_latency.py [--workers URL,URL] [--bootstrap HOST:PORT]
        [--rates R[,R]] [--seconds S] [--max-in-flight N] [--drain S] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from options import add_fleet_options, worker_urls

# bench/publish.py and bench/subscribe.py: found next to this file when run as a script.
from publish import (
    BenchError,
    BusTopic,
    auth_headers,
    check_health,
    create_topic,
    delete_topic,
    encode,
    exit_status,
    percentile,
    run_bench,
)
from subscribe import sse_events

MODES = ("raw", "bus")
REQUEST_TIMEOUT_S = 10.0  # one POST, or one raw send until delivered
CONNECT_TIMEOUT_S = 20.0  # for the SSE reader (or the raw consumer) to be in place
SSE_IDLE_S = 30.0  # a silent stream is dead (the bus sends keep-alives every 15 s)
MAX_ERRORS_SHOWN = 5
P50_EXTRA_MS = 1.0  # target: bus p50 at most raw p50 + this
P99_RATIO = 1.2  # target: bus p99 at most this times raw p99

LoadAverage = tuple[float, float, float]  # os.getloadavg()
# Sends record `index` (its payload stamped with the send time) and returns once it is acknowledged.
Sender = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    rates: list[int]
    seconds: float
    max_in_flight: int
    drain: float
    json_out: str | None


@dataclass
class Tally:
    """What one mode sent and what its reader received."""

    expected: int
    sent: int = 0
    send_errors: list[str] = field(default_factory=list)
    first_sent: float | None = None  # time.time()
    last_sent: float | None = None
    latencies: list[float] = field(default_factory=list)  # seconds, one per record received
    seen: set[int] = field(default_factory=set)
    repeats: int = 0
    last_received: float | None = None
    reader_error: str | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def received(self, payload: Any, now: float) -> None:
        index, sent_at = int(payload["i"]), float(payload["t"])
        if index in self.seen:
            self.repeats += 1
        else:
            self.seen.add(index)
        self.latencies.append(now - sent_at)
        self.last_received = now
        if len(self.seen) >= self.expected:
            self.complete.set()


@dataclass(frozen=True)
class ModeResult:
    mode: str
    rate: int  # offered, records/s
    records: int  # offered in all
    sent: int  # acknowledged sends
    achieved_per_s: float  # acknowledged sends over the sending time
    received_per_s: float  # distinct records received over first send → last receive
    p50_ms: float
    p99_ms: float
    max_ms: float
    missing: int
    repeated: int
    send_errors: int
    load: LoadAverage  # at the end of the mode
    problems: list[str]


# --- inputs -----------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_fleet_options(p)
    p.add_argument("--rates", default="1000,2500", help="comma-separated offered rates, records/s")
    p.add_argument("--seconds", type=float, default=10.0, help="sending time per rate and mode")
    p.add_argument("--max-in-flight", type=int, default=64, help="sends awaiting their ack at once")
    p.add_argument("--drain", type=float, default=10.0, help="after the last send, wait this long at most")
    a = p.parse_args(argv)
    workers = worker_urls(a.workers)
    if not workers:
        p.error("--workers needs at least one URL")
    try:
        rates = [int(r) for r in a.rates.split(",") if r.strip()]
    except ValueError:
        p.error("--rates is a comma-separated list of whole numbers")
    if not rates or min(rates) < 1 or a.seconds <= 0 or a.max_in_flight < 1 or a.drain <= 0:
        p.error("--rates must be >= 1, --seconds and --drain > 0, --max-in-flight >= 1")
    return Config(workers, a.bootstrap, rates, a.seconds, a.max_in_flight, a.drain, a.json_out)


def stamped(index: int) -> dict[str, Any]:
    """A record's payload: its index and its send time (seconds since the epoch)."""
    return {"i": index, "t": time.time()}


# --- sending at a fixed offered rate -------------------------------------------------


async def paced(send: Sender, rate: float, count: int, in_flight: int, tally: Tally) -> None:
    """Send records 0..count-1, record k due at k/rate s; late slots are sent late, never skipped.
    Cancelled, it cancels the sends in flight too: none outlives it."""
    slots = asyncio.Semaphore(in_flight)
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int) -> None:
        try:
            await asyncio.wait_for(send(index), REQUEST_TIMEOUT_S)
            tally.sent += 1
            tally.last_sent = time.time()
        # ValueError: a proxy or crash page that is not JSON.
        except (BenchError, KafkaError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            tally.send_errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            slots.release()

    start = time.perf_counter()
    tally.first_sent = time.time()
    try:
        for index in range(count):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            task = asyncio.create_task(one(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    finally:
        for task in list(tasks):  # only when cancelled: otherwise every send is done
            task.cancel()


def raw_sender(producer: AIOKafkaProducer, topic: BusTopic) -> Sender:
    async def send(index: int) -> None:
        delivery = await producer.send(topic.kafka_topic, value=encode(stamped(index)))
        await delivery

    return send


def bus_sender(session: aiohttp.ClientSession, worker: str, topic: BusTopic) -> Sender:
    async def send(index: int) -> None:
        body = {"topic": topic.ref, "payload": stamped(index)}
        async with session.post(f"{worker}/v1/publish", json=body) as resp:
            if resp.status != 200:
                raise BenchError(f"HTTP {resp.status} from {resp.url}: {await resp.text()}")
            await resp.read()

    return send


# --- reading -------------------------------------------------------------------------


async def read_raw(cfg: Config, topic: BusTopic, tally: Tally, ready: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cfg.bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic.kafka_topic, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        firsts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, firsts[tp])
        await consumer.getmany(timeout_ms=0)  # the fetcher is up
        ready.set()
        while not tally.complete.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            now = time.time()
            for records in batches.values():
                for record in records:
                    tally.received(json.loads(record.value or b"null"), now)
    finally:
        await consumer.stop()


async def read_sse(
    session: aiohttp.ClientSession, worker: str, topic: BusTopic, tally: Tally, ready: asyncio.Event
) -> None:
    url = f"{worker}/v1/subscribe/{topic.ref}?from=earliest"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT_S, sock_read=SSE_IDLE_S)
    async with session.get(url, headers={"Accept": "text/event-stream"}, timeout=timeout) as resp:
        if resp.status != 200:
            raise BenchError(f"GET {url}: HTTP {resp.status}: {await resp.text()}")
        buffer = b""
        while b"\n\n" not in buffer:  # ": subscribed at ...": the reader's consumer is in place
            chunk = await resp.content.readany()
            if not chunk:
                raise BenchError(f"GET {url}: the stream closed before it started")
            buffer += chunk
        if not buffer.lstrip().startswith(b": subscribed"):
            raise BenchError(f"GET {url}: the stream began with {buffer[:80]!r}")
        ready.set()
        # What followed the comment in the same chunk is records already (a topic with
        # records before the reader came: bench/growth.py's readers), or a keep-alive.
        async for events in sse_events(resp, pending=buffer.split(b"\n\n", 1)[1]):
            now = time.time()
            for event, data in events:
                if event == "record":
                    tally.received(json.loads(data)["payload"], now)
                elif event == "error":
                    raise BenchError(f"the SSE stream ended with an error: {data.decode(errors='replace')}")
            if tally.complete.is_set():
                return
        raise BenchError(f"the SSE stream closed after {len(tally.seen)} of {tally.expected} records")


# --- one mode at one rate --------------------------------------------------------------


async def run_mode(
    cfg: Config,
    mode: str,
    rate: int,
    topic: BusTopic,
    session: aiohttp.ClientSession,
    producer: AIOKafkaProducer,
) -> ModeResult:
    count = max(1, round(rate * cfg.seconds))
    tally = Tally(expected=count)
    ready = asyncio.Event()
    reading: Awaitable[None]
    if mode == "raw":
        reading, send = read_raw(cfg, topic, tally, ready), raw_sender(producer, topic)
    else:
        reader_url = cfg.workers[1] if len(cfg.workers) > 1 else cfg.workers[0]
        reading = read_sse(session, reader_url, topic, tally, ready)
        send = bus_sender(session, cfg.workers[0], topic)
    reader = asyncio.create_task(reading)
    try:
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait([reader, waiting], timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if reader.done():
            reader.result()  # raises the reader's error
        if not ready.is_set():
            raise BenchError(f"{mode}: the reader was not in place after {CONNECT_TIMEOUT_S:.0f} s")
        await paced(send, rate, count, cfg.max_in_flight, tally)
        await asyncio.wait([reader], timeout=cfg.drain)
        if reader.done() and not reader.cancelled():
            exc = reader.exception()
            if exc is not None:
                tally.reader_error = f"{type(exc).__name__}: {exc}"
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    return summarise(mode, rate, count, tally, load())


def load() -> LoadAverage:
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def check(mode: str, rate: int, tally: Tally) -> list[str]:
    """What makes the mode's figures untrustworthy: failed sends, records lost or repeated."""
    problems = []
    at = f"{mode} at {rate}/s"
    if tally.send_errors:
        problems.append(f"{at}: {len(tally.send_errors)} sends failed, the first ones:")
        problems += [f"{at}:   {e}" for e in tally.send_errors[:MAX_ERRORS_SHOWN]]
    if tally.reader_error:
        problems.append(f"{at}: the reader failed: {tally.reader_error}")
    missing = tally.expected - len(tally.seen)
    if missing:
        problems.append(f"{at}: {missing} of {tally.expected} records never reached the reader")
    if tally.repeats:
        problems.append(f"{at}: {tally.repeats} records reached the reader more than once")
    return problems


def summarise(mode: str, rate: int, count: int, tally: Tally, at_end: LoadAverage) -> ModeResult:
    first = tally.first_sent or math.nan
    sending = (tally.last_sent or math.nan) - first
    receiving = (tally.last_received or math.nan) - first
    return ModeResult(
        mode=mode,
        rate=rate,
        records=count,
        sent=tally.sent,
        achieved_per_s=round(tally.sent / sending, 1) if sending > 0 else math.nan,
        received_per_s=round(len(tally.seen) / receiving, 1) if receiving > 0 else math.nan,
        p50_ms=round(percentile(tally.latencies, 50) * 1000, 2),
        p99_ms=round(percentile(tally.latencies, 99) * 1000, 2),
        max_ms=round(max(tally.latencies, default=math.nan) * 1000, 2),
        missing=tally.expected - len(tally.seen),
        repeated=tally.repeats,
        send_errors=len(tally.send_errors),
        load=at_end,
        problems=check(mode, rate, tally),
    )


# --- judging and output -----------------------------------------------------------------


def verdict(raw: ModeResult, bus: ModeResult) -> tuple[bool, str]:
    """Issue 16's target at one rate: (met, how it compares)."""
    extra = bus.p50_ms - raw.p50_ms
    ratio = bus.p99_ms / raw.p99_ms if raw.p99_ms > 0 else math.inf
    met = extra <= P50_EXTRA_MS and ratio <= P99_RATIO and not bus.problems
    return met, f"p50 {extra:+.1f} ms, p99 {ratio:.2f}x raw"


def print_table(results: list[ModeResult]) -> None:
    header = (
        f"{'mode':<5}{'offered/s':>10}{'records':>9}{'sent/s':>9}{'recv/s':>9}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'lost':>6}{'twice':>6}   load 1/5/15"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.mode:<5}{r.rate:>10}{r.records:>9}{r.achieved_per_s:>9.0f}{r.received_per_s:>9.0f}"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.max_ms:>9.1f}{r.missing:>6}{r.repeated:>6}"
            f"   {' / '.join(f'{x:.2f}' for x in r.load)}"
        )
    by_rate = {(r.mode, r.rate): r for r in results}
    for rate in dict.fromkeys(r.rate for r in results):
        raw, bus = by_rate.get(("raw", rate)), by_rate.get(("bus", rate))
        if raw and bus:
            met, how = verdict(raw, bus)
            target = f"p50 ≤ raw + {P50_EXTRA_MS:.0f} ms, p99 ≤ {P99_RATIO}x raw"
            print(f"at {rate}/s: {how}: target ({target}) {'met' if met else 'NOT MET'}")


def jsonable(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def write_json(path: str, cfg: Config, results: list[ModeResult]) -> None:
    config = {k: v for k, v in asdict(cfg).items() if k != "json_out"}
    rows = [{k: jsonable(v) for k, v in asdict(r).items()} for r in results]
    with open(path, "w") as f:
        json.dump({"config": config, "results": rows}, f, indent=2, ensure_ascii=False)
        f.write("\n")


# --- the run --------------------------------------------------------------------------


async def bench(cfg: Config) -> int:
    suffix = secrets.token_hex(3)  # fresh topics per run, so reruns never collide
    connector = aiohttp.TCPConnector(limit=cfg.max_in_flight + 8)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    results: list[ModeResult] = []
    print(f"load average at the start: {' / '.join(f'{x:.2f}' for x in load())}", flush=True)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=auth_headers()) as session:
        await check_health(session, cfg.workers)
        topics: list[BusTopic] = []
        producer = AIOKafkaProducer(
            bootstrap_servers=cfg.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=int(REQUEST_TIMEOUT_S * 1000),
        )
        await producer.start()
        try:
            for rate in cfg.rates:
                for mode in MODES:
                    topic = await create_topic(session, cfg.workers[0], f"lat-{suffix}-{mode}-{rate}")
                    topics.append(topic)
                    results.append(await run_mode(cfg, mode, rate, topic, session, producer))
                    r = results[-1]
                    print(
                        f"{mode} at {rate}/s: p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
                        f"{r.received_per_s:.0f}/s received, load {r.load[0]:.2f}",
                        flush=True,
                    )
        finally:
            await producer.stop()
            for topic in topics:
                await delete_topic(session, cfg.workers[0], topic)
    print_table(results)
    if cfg.json_out:
        write_json(cfg.json_out, cfg, results)
    problems = [p for r in results for p in r.problems]
    return exit_status(problems, "sends failed, or records were lost or repeated")


def main(argv: list[str] | None = None) -> int:
    return run_bench(bench(parse_args(argv)), (BenchError, KafkaError, TimeoutError, aiohttp.ClientError))


if __name__ == "__main__":
    sys.exit(main())
