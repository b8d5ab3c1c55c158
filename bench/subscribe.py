"""Subscribe benchmark: what consuming through a bus subscription costs compared with Kafka directly.

One run measures four modes against the same broker, each on its own fresh bus topic
(3 partitions, created through the API and deleted at the end) that is first filled
with warm-up + N records (POST /v1/publish/batch of 500, or straight to Kafka with
--fill kafka):

  raw     aiokafka consumer (no group) assigned every partition from the beginning,
          getmany(max_records=500) until all records are read; each value is parsed
          as JSON, as a subscriber would.
  auto    a subscription with ack_mode "auto", start "earliest", consumed over SSE
          (GET .../events); each `delivery` event is parsed and counted.
  manual  a subscription with ack_mode "manual", consumed over SSE; every record is
          acked by its delivery id: POST .../ack with 100 ids as soon as 100 are
          collected (a short timer flushes the rest), A acks in flight at once. A
          record counts once its ack answered 200 {"acked": k} with k == ids sent.
  pull    the same with POST .../pull {"max_records": 500, "wait_ms": 1000} in a loop
          instead of SSE, acked the same way.

The SSE stream, the pulls and the acks go to the worker that owns the subscription (as
GET .../lag names it), or with --via other to another worker, which forwards them. The
first warm-up records of each mode (500) are not timed: the clock runs from the moment
they are counted until all records are. 503 owner_moved / not_ready answers are retried
after 0.3 s.

Afterwards each mode must have seen every record exactly once (distinct (partition,
offset) == records in the topic, no record delivered twice), the subscription's lag must
drop to total_lag 0, no request may have failed and each mode must finish within 120 s;
otherwise the run fails loudly (exit status 1).

Reported per mode: msgs/s and its ratio to raw, time to the first record, p50/p99 of one
ack request, the CPU used by the bench client and by each worker (cores: CPU seconds over
the mode's wall time, from the workers' /metrics, which needs an admin key), and the
issue's targets: manual per-record ack >= 5,000 msgs/s per worker (a subscription runs on
one worker), auto >= 0.5x raw.

Needs a running broker and fleet: `scripts/kafka up && scripts/fleet up --workers 2`.

    python bench/subscribe.py [--workers URL,URL] [--bootstrap HOST:PORT]
        [--records N] [--payload-bytes B] [--via owner|other] [--fill bus|kafka]
        [--ack-batch S] [--ack-concurrency A] [--modes raw,auto,...] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from options import add_fleet_options, worker_urls

# bench/publish.py: found next to this file when run as `python bench/subscribe.py`.
from publish import (
    MAX_BATCH,
    NAMESPACE,
    PARTITIONS,
    TENANT,
    WARMUP_RECORDS,
    BenchError,
    BusTopic,
    admin_timeout,
    auth_headers,
    batch_body,
    check_health,
    check_mode,
    create_topic,
    delete_topic,
    drive,
    encode,
    http_sender,
    make_payload,
    percentile,
    raw_sender,
    stored_records,
)

MODES = ("raw", "auto", "manual", "pull")
REQUEST_TIMEOUT_S = 10.0  # one HTTP request (a pull waits at most PULL_WAIT_MS of it)
SSE_IDLE_S = 30.0  # an SSE stream silent this long is dead (the bus sends keep-alives)
MODE_BUDGET_S = 120.0  # one mode, from opening its stream to its last record
FILL_CONCURRENCY = 4  # concurrent batch requests (or producer tasks) filling a topic
RETRY_AFTER_S = 0.3  # after a retriable 503
RETRY_BUDGET_S = 30.0  # retrying one request gives up after this long
RETRIABLE = ("owner_moved", "not_ready")
PULL_MAX = 500
PULL_WAIT_MS = 1_000
FLUSH_S = 0.05  # acks of fewer than --ack-batch ids wait at most this long
LAG_WAIT_S = 5.0  # for the subscription's commits to catch up (it commits every 0.2 s)
MAX_ERRORS_SHOWN = 5
TARGET_MANUAL_RATE = 5_000.0  # msgs/s per worker, manual per-record ack (the issue)
TARGET_AUTO_RATIO = 0.5  # auto over raw (the issue)

Position = tuple[int, int]  # (partition, offset)


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    records: int
    payload_bytes: int
    via: str
    fill: str
    ack_batch: int
    ack_concurrency: int
    json_out: str | None
    modes: tuple[str, ...] = MODES


@dataclass
class Tally:
    """What one mode has seen so far. Counted records (delivered for raw and auto, acked
    for manual and pull) move the clock: it starts once the warm-up is counted."""

    expected: int  # warm-up + N: every record of the topic
    opened: float = field(default_factory=time.perf_counter)
    first: float | None = None
    started: float | None = None
    started_at_count: int = 0
    finished: float | None = None
    counted: int = 0
    positions: set[Position] = field(default_factory=set)
    repeats: int = 0  # deliveries of a position seen before
    redelivered: int = 0  # deliveries with delivery_count > 1
    ack_latencies: list[float] = field(default_factory=list)  # seconds, one per ack request
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def seen(self, partition: int, offset: int, delivery_count: int = 1) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        position = (partition, offset)
        if position in self.positions:
            self.repeats += 1
        else:
            self.positions.add(position)
        if delivery_count > 1:
            self.redelivered += 1

    def count(self, n: int) -> None:
        self.counted += n
        now = time.perf_counter()
        if self.started is None and self.counted >= WARMUP_RECORDS:
            self.started, self.started_at_count = now, self.counted
        if self.finished is None and self.counted >= self.expected:
            self.finished = now
            self.done.set()

    def fail(self, message: str) -> None:
        self.errors.append(message)
        self.done.set()

    @property
    def all_delivered(self) -> bool:
        return len(self.positions) >= self.expected


@dataclass(frozen=True)
class ModeResult:
    mode: str
    via: str  # kafka, or owner / other: the worker the client talked to
    worker: str | None
    records: int  # timed records: all but the warm-up
    seconds: float
    msgs_per_s: float
    ratio_to_raw: float
    first_record_ms: float
    ack_p50_ms: float
    ack_p99_ms: float
    client_cpu: float  # cores: this process's CPU seconds over the mode's wall time
    worker_cpu: dict[str, float | None]  # cores per worker URL (None: /metrics unreadable)
    target: str
    met: bool | None
    lag_after: int | None
    retries: int
    redelivered: int
    errors: int


class Bus:
    """HTTP calls to the fleet that retry a 503 owner_moved / not_ready."""

    def __init__(self, session: aiohttp.ClientSession, tally: Tally | None = None) -> None:
        self.session = session
        self.tally = tally

    async def call(self, method: str, url: str, body: Any = None, expect: int = 200) -> Any:
        give_up = time.monotonic() + RETRY_BUDGET_S
        while True:
            async with self.session.request(method, url, json=body) as resp:
                answer = await resp.json(content_type=None)
                status = resp.status
            if status == expect:
                return answer
            if status == 503 and error_code(answer) in RETRIABLE and time.monotonic() < give_up:
                if self.tally is not None:
                    self.tally.retries += 1
                await asyncio.sleep(RETRY_AFTER_S)
                continue
            raise BenchError(f"{method} {url}: HTTP {status}: {answer}")

    async def sse(self, url: str) -> aiohttp.ClientResponse:
        """An open event stream (the caller closes it)."""
        give_up = time.monotonic() + RETRY_BUDGET_S
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT_S, sock_read=SSE_IDLE_S)
        while True:
            resp = await self.session.get(url, headers={"Accept": "text/event-stream"}, timeout=timeout)
            if resp.status == 200:
                return resp
            answer = await resp.json(content_type=None)
            resp.release()
            if resp.status == 503 and error_code(answer) in RETRIABLE and time.monotonic() < give_up:
                if self.tally is not None:
                    self.tally.retries += 1
                await asyncio.sleep(RETRY_AFTER_S)
                continue
            raise BenchError(f"GET {url}: HTTP {resp.status}: {answer}")


def error_code(answer: Any) -> str | None:
    error = answer.get("error") if isinstance(answer, dict) else None
    return error.get("code") if isinstance(error, dict) else None


# --- inputs -----------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_fleet_options(p)
    p.add_argument("--records", type=int, default=20_000, help="timed records per mode (after the warm-up)")
    p.add_argument("--payload-bytes", type=int, default=256)
    p.add_argument(
        "--via",
        choices=("owner", "other"),
        default="owner",
        help="consume and ack through the subscription's owner, or through another worker",
    )
    p.add_argument(
        "--fill",
        choices=("bus", "kafka"),
        default="bus",
        help="fill the topics through POST /v1/publish/batch (records carry the bus's headers) "
        "or straight to Kafka (no headers)",
    )
    p.add_argument("--ack-batch", type=int, default=100, help="delivery ids per ack request")
    p.add_argument("--ack-concurrency", type=int, default=4, help="ack requests in flight at once")
    p.add_argument(
        "--modes",
        default=",".join(MODES),
        help="comma-separated modes to run, to profile one (a ratio needs raw in the run)",
    )
    a = p.parse_args(argv)
    workers = worker_urls(a.workers)
    if not workers:
        p.error("--workers needs at least one URL")
    if a.via == "other" and len(workers) < 2:
        p.error("--via other needs at least two workers")
    if a.records < 2 * PULL_MAX or a.payload_bytes < 16:
        p.error(f"--records must be >= {2 * PULL_MAX}, --payload-bytes >= 16")
    if not 1 <= a.ack_batch <= 1000 or a.ack_concurrency < 1:
        p.error("--ack-batch must be between 1 and 1000, --ack-concurrency >= 1")
    wanted = {m.strip() for m in a.modes.split(",")}
    if not wanted or wanted - set(MODES):
        p.error(f"--modes takes a comma-separated subset of {','.join(MODES)}")
    return Config(
        workers,
        a.bootstrap,
        a.records,
        a.payload_bytes,
        a.via,
        a.fill,
        a.ack_batch,
        a.ack_concurrency,
        a.json_out,
        tuple(m for m in MODES if m in wanted),
    )


# --- the bus API: subscriptions ---------------------------------------------------


def subscription_path(sub_id: str) -> str:
    return f"/v1/subscriptions/{NAMESPACE}/{TENANT}/{sub_id}"


async def create_subscription(bus: Bus, worker: str, sub_id: str, topic: str, ack_mode: str) -> None:
    spec = {
        "namespace": NAMESPACE,
        "tenant": TENANT,
        "id": sub_id,
        "topic": topic,
        "start": "earliest",
        "ack_mode": ack_mode,
    }
    await bus.call("POST", f"{worker}/v1/subscriptions", spec, expect=201)


async def delete_subscription(session: aiohttp.ClientSession, worker: str, sub_id: str) -> None:
    """Best effort: a failed delete is reported but does not hide the run's result."""
    try:
        async with session.delete(worker + subscription_path(sub_id), timeout=admin_timeout()) as resp:
            if resp.status != 200:
                print(
                    f"warning: deleting subscription {sub_id}: HTTP {resp.status}: {await resp.text()}",
                    file=sys.stderr,
                )
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"warning: deleting subscription {sub_id} failed: {exc!r}", file=sys.stderr)


async def subscription_lag(bus: Bus, worker: str, sub_id: str) -> dict[str, Any]:
    """GET .../lag; the first call also starts the subscription's dispatcher on its owner."""
    answer: dict[str, Any] = await bus.call("GET", worker + subscription_path(sub_id) + "/lag")
    return answer


def pick_worker(cfg: Config, owner: str) -> tuple[str, str]:
    """(owner's URL as given in --workers, the URL to talk to for cfg.via)."""
    owner = owner.rstrip("/")
    port = owner.rsplit(":", 1)[-1]
    known = [w for w in cfg.workers if w == owner] or [w for w in cfg.workers if w.rsplit(":", 1)[-1] == port]
    mine = known[0] if known else owner
    if cfg.via == "owner":
        return mine, mine
    others = [w for w in cfg.workers if w != mine]
    if not others:
        raise BenchError(f"--via other: every worker given is the owner {owner}")
    return mine, others[0]


async def settled_lag(bus: Bus, worker: str, sub_id: str) -> int:
    """total_lag once it reaches 0, or what it still is after LAG_WAIT_S."""
    give_up = time.monotonic() + LAG_WAIT_S
    while True:
        total = int((await subscription_lag(bus, worker, sub_id))["total_lag"])
        if total == 0 or time.monotonic() >= give_up:
            return total
        await asyncio.sleep(0.2)


# --- consuming --------------------------------------------------------------------


async def sse_events(
    resp: aiohttp.ClientResponse, pending: bytes = b""
) -> AsyncIterator[list[tuple[str, bytes]]]:
    """(event, data) pairs of a text/event-stream, a network chunk's worth at a time.
    `pending`: bytes of the stream the caller read already, to be parsed first."""
    buffer = b""
    async for chunk in chunks_after(pending, resp):
        buffer += chunk
        *blocks, buffer = buffer.split(b"\n\n")
        events = []
        for block in blocks:
            event, data = "message", []
            for line in block.split(b"\n"):
                if not line or line.startswith(b":"):
                    continue  # a comment: session, keep-alive
                name, _, value = line.partition(b":")
                value = value[1:] if value.startswith(b" ") else value
                if name == b"event":
                    event = value.decode()
                elif name == b"data":
                    data.append(value)
            if data:
                events.append((event, b"\n".join(data)))
        if events:
            yield events


async def chunks_after(pending: bytes, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    if pending:
        yield pending
    async for chunk in resp.content.iter_any():
        yield chunk


def deliveries_of(events: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    found = []
    for event, data in events:
        if event == "error":
            raise BenchError(f"the SSE stream ended with an error: {data.decode(errors='replace')}")
        if event == "delivery":
            found.append(json.loads(data))
    return found


async def consume_raw(cfg: Config, topic: BusTopic, tally: Tally) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cfg.bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic.kafka_topic, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        # Explicit offsets: seek_to_beginning can race a group-less consumer's own reset.
        firsts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, firsts[tp])
        while not tally.done.is_set():
            batches = await consumer.getmany(timeout_ms=1000, max_records=PULL_MAX)
            for tp, records in batches.items():
                for record in records:
                    json.loads(record.value or b"null")
                    tally.seen(tp.partition, record.offset)
                tally.count(len(records))
    finally:
        await consumer.stop()


async def consume_auto(bus: Bus, url: str, tally: Tally) -> None:
    resp = await bus.sse(url + "/events")
    try:
        async for events in sse_events(resp):
            deliveries = deliveries_of(events)
            for d in deliveries:
                tally.seen(d["partition"], d["offset"], d["delivery_count"])
            tally.count(len(deliveries))
            if tally.done.is_set():
                return
        raise BenchError(f"the SSE stream closed after {tally.counted} of {tally.expected} records")
    finally:
        resp.close()


class Acker:
    """Acks delivery ids in batches, a few requests in flight; counts what is acked."""

    def __init__(self, bus: Bus, url: str, cfg: Config, tally: Tally) -> None:
        self.bus, self.url, self.tally = bus, url + "/ack", tally
        self.batch = cfg.ack_batch
        self.slots = asyncio.Semaphore(cfg.ack_concurrency)
        self.pending: list[str] = []
        self.pending_since = 0.0
        self.tasks: set[asyncio.Task[None]] = set()
        self.flusher = asyncio.create_task(self._flush_loop())

    async def add(self, delivery_ids: list[str]) -> None:
        if not self.pending:
            self.pending_since = time.monotonic()
        self.pending += delivery_ids
        while len(self.pending) >= self.batch:
            ids, self.pending = self.pending[: self.batch], self.pending[self.batch :]
            await self._send(ids)

    async def drain(self) -> None:
        """Send what is pending and wait for every ack in flight."""
        self.flusher.cancel()
        while self.pending:
            ids, self.pending = self.pending[: self.batch], self.pending[self.batch :]
            await self._send(ids)
        await asyncio.gather(*self.tasks)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S / 2)
            if self.pending and time.monotonic() - self.pending_since >= FLUSH_S:
                # The ids are taken only once a slot is held: drain() cancels this loop,
                # and a cancelled wait for a slot must not lose them.
                await self.slots.acquire()
                ids, self.pending = self.pending[: self.batch], self.pending[self.batch :]
                if ids:
                    self._start(ids)
                else:
                    self.slots.release()

    async def _send(self, ids: list[str]) -> None:
        await self.slots.acquire()  # back-pressure: at most ack_concurrency in flight
        self._start(ids)

    def _start(self, ids: list[str]) -> None:
        """Ack ids in a task of its own; the caller holds a slot, which the task gives back."""
        task = asyncio.create_task(self._ack(ids))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _ack(self, ids: list[str]) -> None:
        began = time.perf_counter()
        try:
            answer = await asyncio.wait_for(self.bus.call("POST", self.url, {"delivery_ids": ids}), 60)
            if not isinstance(answer, dict) or answer.get("acked") != len(ids):
                raise BenchError(f"ack of {len(ids)} ids answered {answer}")
            self.tally.ack_latencies.append(time.perf_counter() - began)
            self.tally.count(len(ids))
        # ValueError: a proxy or crash page that is not JSON.
        except (BenchError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.tally.fail(f"{type(exc).__name__}: {exc}")
        finally:
            self.slots.release()


async def consume_manual(bus: Bus, url: str, cfg: Config, tally: Tally) -> None:
    acker = Acker(bus, url, cfg, tally)
    resp = await bus.sse(url + "/events")
    try:
        async for events in sse_events(resp):
            deliveries = deliveries_of(events)
            for d in deliveries:
                tally.seen(d["partition"], d["offset"], d["delivery_count"])
            await acker.add([d["delivery_id"] for d in deliveries])
            if tally.all_delivered or tally.errors:
                break
        else:
            raise BenchError(
                f"the SSE stream closed after {len(tally.positions)} of {tally.expected} records"
            )
        # The stream stays open until the acks are in: closing it gives back what it holds.
        await acker.drain()
        await tally.done.wait()
    finally:
        acker.flusher.cancel()
        resp.close()


async def consume_pull(bus: Bus, url: str, cfg: Config, tally: Tally) -> None:
    acker = Acker(bus, url, cfg, tally)
    try:
        body = {"max_records": PULL_MAX, "wait_ms": PULL_WAIT_MS}
        while not tally.all_delivered and not tally.errors:
            answer = await bus.call("POST", url + "/pull", body)
            deliveries = answer["deliveries"]
            for d in deliveries:
                tally.seen(d["partition"], d["offset"], d["delivery_count"])
            await acker.add([d["delivery_id"] for d in deliveries])
        await acker.drain()
        await tally.done.wait()
    finally:
        acker.flusher.cancel()


# --- verification and results ----------------------------------------------------


async def worker_cpu_seconds(session: aiohttp.ClientSession, workers: list[str]) -> dict[str, float | None]:
    """process_cpu_seconds_total of each worker; None where /metrics cannot be read."""
    found: dict[str, float | None] = {}
    for w in workers:
        found[w] = None
        try:
            async with session.get(f"{w}/metrics") as resp:
                text = await resp.text() if resp.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError):
            continue
        for line in text.splitlines():
            if line.startswith("process_cpu_seconds_total "):
                found[w] = float(line.split()[1])
    return found


def check_tally(mode: str, tally: Tally, lag: int | None) -> list[str]:
    """The problems that make a mode's figures untrustworthy; empty when it is sound."""
    problems = []
    if tally.errors:
        problems.append(f"{mode}: {len(tally.errors)} errors, the first ones:")
        problems += [f"{mode}:   {e}" for e in tally.errors[:MAX_ERRORS_SHOWN]]
    if len(tally.positions) != tally.expected:
        problems.append(
            f"{mode}: {len(tally.positions)} distinct records delivered, expected {tally.expected}"
        )
    if tally.repeats or tally.redelivered:
        problems.append(
            f"{mode}: {tally.repeats} records delivered more than once, {tally.redelivered} redeliveries"
        )
    if tally.counted != tally.expected:
        problems.append(f"{mode}: {tally.counted} records counted, expected {tally.expected}")
    if lag is not None and lag != 0:
        problems.append(f"{mode}: total_lag is {lag} after the run, {LAG_WAIT_S:.0f} s after the last ack")
    return problems


def cores(
    before: dict[str, float | None], after: dict[str, float | None], wall: float
) -> dict[str, float | None]:
    used: dict[str, float | None] = {}
    for w, start in before.items():
        end = after.get(w)
        used[w] = None if start is None or end is None else round((end - start) / wall, 2)
    return used


def summarise(
    mode: str,
    via: str,
    worker: str | None,
    tally: Tally,
    cpu: tuple[float, dict[str, float | None]],
    lag: int | None,
    raw_rate: float | None,
) -> ModeResult:
    records = tally.counted - tally.started_at_count
    seconds = (tally.finished or math.nan) - (tally.started or math.nan)
    rate = records / seconds if records and seconds > 0 else math.nan
    ratio = rate / raw_rate if raw_rate else math.nan
    target, met = "", None
    if mode == "auto":
        target, met = f">= {TARGET_AUTO_RATIO}x raw", ratio >= TARGET_AUTO_RATIO
    elif mode in ("manual", "pull"):
        target, met = f">= {TARGET_MANUAL_RATE:,.0f}/s", rate >= TARGET_MANUAL_RATE
    return ModeResult(
        mode=mode,
        via=via,
        worker=worker,
        records=records,
        seconds=round(seconds, 3),
        msgs_per_s=round(rate, 1),
        ratio_to_raw=round(ratio, 3),
        first_record_ms=round(((tally.first or math.nan) - tally.opened) * 1000, 1),
        ack_p50_ms=round(percentile(tally.ack_latencies, 50) * 1000, 2),
        ack_p99_ms=round(percentile(tally.ack_latencies, 99) * 1000, 2),
        client_cpu=cpu[0],
        worker_cpu=cpu[1],
        target=target,
        met=met,
        lag_after=lag,
        retries=tally.retries,
        redelivered=tally.redelivered,
        errors=len(tally.errors),
    )


def print_table(results: list[ModeResult], workers: list[str]) -> None:
    header = (
        f"{'mode':<8}{'via':<7}{'records':>8}{'seconds':>9}{'msgs/s':>9}{'x raw':>7}{'first ms':>10}"
        f"{'ack p50':>9}{'ack p99':>9}{'cpu client':>12}{'cpu workers':>14}   target"
    )
    print(header)
    print("-" * (len(header) + 18))
    for r in results:
        # The owner first, then the others; for raw, the workers in --workers order.
        order = ([r.worker] if r.worker else []) + [w for w in workers if w != r.worker]
        worker_cpu = "+".join("-" if r.worker_cpu.get(w) is None else f"{r.worker_cpu[w]:.2f}" for w in order)
        met = "" if r.met is None else ("met" if r.met else "NOT MET")
        ack50 = "" if math.isnan(r.ack_p50_ms) else f"{r.ack_p50_ms:.1f}"
        ack99 = "" if math.isnan(r.ack_p99_ms) else f"{r.ack_p99_ms:.1f}"
        print(
            f"{r.mode:<8}{r.via:<7}{r.records:>8}{r.seconds:>9.2f}{r.msgs_per_s:>9.0f}{r.ratio_to_raw:>7.2f}"
            f"{r.first_record_ms:>10.0f}{ack50:>9}{ack99:>9}{r.client_cpu:>12.2f}{worker_cpu:>14}"
            f"   {r.target} {met}".rstrip()
        )
    print("\ncpu: cores over the mode's wall time; workers: the owner first (raw: --workers order)")


def write_json(path: str, cfg: Config, results: list[ModeResult]) -> None:
    config: dict[str, Any] = {k: v for k, v in asdict(cfg).items() if k != "json_out"}
    config["warmup_records"] = WARMUP_RECORDS
    rows = [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(r).items()}
        for r in results
    ]
    with open(path, "w") as f:
        json.dump({"config": config, "results": rows}, f, indent=2)
        f.write("\n")


# --- the run --------------------------------------------------------------------


async def fill(cfg: Config, session: aiohttp.ClientSession, topics: dict[str, BusTopic]) -> None:
    """Write warm-up + N records to each topic and check that they are all there."""
    payload = make_payload(cfg.payload_bytes)
    total = WARMUP_RECORDS + cfg.records
    producer = AIOKafkaProducer(
        bootstrap_servers=cfg.bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap, group_id=None, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        for mode, topic in topics.items():
            if cfg.fill == "kafka":
                send = raw_sender(producer, topic, encode(payload))
            else:
                send = http_sender(session, cfg.workers, "/v1/publish/batch", batch_body(topic, payload))
            run = await drive(send, 0, total, MAX_BATCH, FILL_CONCURRENCY)
            problems = check_mode(f"filling {mode}", run, await stored_records(consumer, topic), total)
            if problems:
                raise BenchError("\n".join(problems))
    finally:
        await producer.stop()
        await consumer.stop()


async def run_mode(
    cfg: Config,
    session: aiohttp.ClientSession,
    mode: str,
    topic: BusTopic,
    sub_id: str | None,
    raw_rate: float | None,
) -> tuple[ModeResult, list[str]]:
    """Consume one topic in one mode, timed; then verify it."""
    tally = Tally(expected=WARMUP_RECORDS + cfg.records)
    bus = Bus(session, tally)
    owner = url = None
    if sub_id is not None:
        # Finding the owner starts the dispatcher there: not part of the timed run.
        found = await subscription_lag(bus, cfg.workers[0], sub_id)
        owner, worker = pick_worker(cfg, found["owner"])
        url = worker + subscription_path(sub_id)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    workers_before = await worker_cpu_seconds(session, cfg.workers)
    tally.opened = time.perf_counter()
    try:
        async with asyncio.timeout(MODE_BUDGET_S):
            if mode == "raw":
                await consume_raw(cfg, topic, tally)
            elif mode == "auto":
                assert url is not None
                await consume_auto(bus, url, tally)
            elif mode == "manual":
                assert url is not None
                await consume_manual(bus, url, cfg, tally)
            else:
                assert url is not None
                await consume_pull(bus, url, cfg, tally)
    # Reported with the mode's other problems (the run fails); the next modes still run.
    except TimeoutError:
        tally.fail(f"not done after {MODE_BUDGET_S:.0f} s ({tally.counted} of {tally.expected} counted)")
    except (BenchError, KafkaError, aiohttp.ClientError, ValueError) as exc:
        tally.fail(f"{type(exc).__name__}: {exc}")
    wall = time.perf_counter() - wall_before
    workers_after = await worker_cpu_seconds(session, cfg.workers)
    cpu = (round((time.process_time() - cpu_before) / wall, 2), cores(workers_before, workers_after, wall))
    lag = None
    if sub_id is not None and owner is not None:
        try:
            lag = await settled_lag(Bus(session), owner, sub_id)
        except (BenchError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            tally.errors.append(f"reading the lag: {type(exc).__name__}: {exc}")
    via = "kafka" if sub_id is None else cfg.via
    result = summarise(mode, via, owner, tally, cpu, lag, raw_rate)
    return result, check_tally(mode, tally, lag)


async def run_modes(
    cfg: Config, session: aiohttp.ClientSession, topics: dict[str, BusTopic], subs: dict[str, str]
) -> tuple[list[ModeResult], list[str]]:
    """Measure and verify each mode in turn; returns results and problems."""
    results: list[ModeResult] = []
    problems: list[str] = []
    raw_rate: float | None = None
    for mode in cfg.modes:
        result, found = await run_mode(cfg, session, mode, topics[mode], subs.get(mode), raw_rate)
        if mode == "raw":
            raw_rate = result.msgs_per_s
        else:  # stop its dispatcher now, so that it does not run beside the next mode
            await delete_subscription(session, cfg.workers[0], subs.pop(mode))
        results.append(result)
        problems += found
    return results, problems


async def bench(cfg: Config) -> int:
    suffix = secrets.token_hex(3)  # fresh topics and subscriptions per run, so reruns never collide
    connector = aiohttp.TCPConnector(limit=cfg.ack_concurrency + 16)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=auth_headers()) as session:
        await check_health(session, cfg.workers)
        topics: dict[str, BusTopic] = {}
        subs: dict[str, str] = {}  # mode -> subscription id, until deleted
        dead_letter_topics: list[BusTopic] = []
        try:
            for mode in cfg.modes:
                topics[mode] = await create_topic(session, cfg.workers[0], f"sub-{suffix}-{mode}")
            await fill(cfg, session, topics)
            for mode in [m for m in cfg.modes if m != "raw"]:
                sub_id = f"sub-{suffix}-{mode}"
                ack_mode = "auto" if mode == "auto" else "manual"
                name = topics[mode].ref.rsplit("/", 1)[-1]
                ref = f"{NAMESPACE}/{TENANT}/{sub_id}-dlq"  # made with the subscription
                dead_letter_topics.append(BusTopic(ref, "", PARTITIONS))
                await create_subscription(Bus(session), cfg.workers[0], sub_id, name, ack_mode)
                subs[mode] = sub_id
            results, problems = await run_modes(cfg, session, topics, subs)
        finally:
            for sub_id in subs.values():
                await delete_subscription(session, cfg.workers[0], sub_id)
            for topic in [*topics.values(), *dead_letter_topics]:
                await delete_topic(session, cfg.workers[0], topic)
    print_table(results, cfg.workers)
    if cfg.json_out:
        write_json(cfg.json_out, cfg, results)
    if problems:
        print(
            "\n!!! BENCHMARK FAILED: requests failed, or records are missing or repeated !!!", file=sys.stderr
        )
        for p in problems:
            print(f"!!! {p}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        return asyncio.run(bench(cfg))
    except (BenchError, KafkaError, TimeoutError, aiohttp.ClientError) as exc:
        print(f"\n!!! BENCHMARK ABORTED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
