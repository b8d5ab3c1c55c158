"""Token stream benchmark: chunks/s and chunk latency (POST to SSE delivery), against raw Kafka.

For each offered rate R (chunks/s, all streams together) and batch size b (chunks per
request), one run measures two modes in turn:

  raw  S producer lanes, one per stream, on one aiokafka producer (acks=all, idempotent,
       linger 2 ms) writing one JSON record of b chunks per request-equivalent, keyed by
       stream, to a scratch topic made with POST /v1/topics (12 partitions, like the
       conversations log); one group-less consumer (fetch_max_wait_ms 5) reads them all.
       Paced exactly like the bus mode. What Kafka alone costs for the same record rate.
  bus  S streams spread over N conversations (made once per run, with one throw-away
       stream each as a warm-up). Every stream has its own reader, an SSE
       GET /v1/streams/bench/t1/{conversation}/{stream}, opened before its first chunk;
       chunk 0 of every stream is written and seen by its reader before the clock starts
       (so every reader is in place), then --settle seconds pass with no
       chunks (the `idle` CPU); then a producer per stream POSTs .../stream-chunks with b
       chunks per request, and .../stream-end with its last chunk_seq. With --transport ws
       (mode `bus-ws`) each producer instead opens one WebSocket (GET /v1/streams/.../write)
       and sends a frame of b chunks per request-equivalent, and the end as its last frame.

Pacing is open-loop: stream i sends its k-th request (b chunks) at (k + i/S) * b*S/R
seconds, so the requests of all streams are spread evenly over --seconds, without waiting
for earlier answers, up to --in-flight requests per stream; a producer that falls behind
sends late (`late p99`), and none sends after --seconds plus one request interval. Every
chunk carries its send time (data.t = time.time() just before the POST); latency is the
SSE receive time minus it, per chunk. chunks/s is the chunks delivered over the time from
the first send to the last delivery; `reached` is that over R. Requests go round-robin
over the workers and readers to the worker after the writer's first (--route any: half the
requests are forwarded and half the readers relayed by a worker that does not own the
conversation), or all to the conversation's owner (--route owner).

Checks: every reader got every acknowledged chunk exactly once, in chunk_seq order, no
gap event (readers use --gap-timeout-ms, the bus's default 2000), and an end event with
the right last_chunk_seq; every raw chunk was consumed once. Any failure: exit status 1.
503 owner_moved / not_ready and 504 timeout answers are retried. Also reported: the Kafka
records written (bus: how much the conversations log of --prefix grew, so chunks/record is
the group commit's coalescing), worker CPU (cores, from process_cpu_seconds_total in each
worker's /metrics, which needs the admin key) and the workers' CPU ms per chunk delivered,
client CPU, and the machine's load average (others' work shows there).

Needs a running broker and fleet: `scripts/kafka up && scripts/fleet up --workers 2`.

    python bench/streams.py [--workers URL,URL] [--bootstrap HOST:PORT] [--prefix P]
        [--streams S] [--conversations N] [--rate R[,R...]] [--batch B[,B...]]
        [--seconds D] [--in-flight F] [--settle SECONDS] [--gap-timeout-ms MS]
        [--route any|owner] [--transport http|ws] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from options import add_fleet_options, worker_urls

# bench/publish.py: found next to this file when run as `python bench/streams.py`.
from publish import auth_headers, check_health, percentile

NAMESPACE, TENANT = "bench", "t1"
STATE_PARTITIONS = 12  # AGENTBUS_STATE_PARTITIONS of the fleet: the conversations log's
RAW_PARTITIONS = STATE_PARTITIONS
RETRIABLE = ("owner_moved", "not_ready", "timeout")
RETRY_SLEEP_S = 0.2
MAX_ATTEMPTS = 50
WORKER_HEADER = "X-Agentbus-Worker"  # the owner that answered
TARGET_STREAMS, TARGET_RATE, TARGET_P99_MS = 100, 10_000, 50.0
REACHED = 0.95  # a mode reaches its offered rate when it delivers at least this share of it
READY_S = 60.0  # for every reader to be connected
DRAIN_S = 30.0  # after the last send, for readers (or the raw consumer) to see everything
REQUEST_TIMEOUT_S = 30.0
ADMIN_TIMEOUT_S = 20.0
MAX_ERRORS_SHOWN = 5

# Sends chunks `seqs` of stream `index`, stamped with send time `t`; raises on failure.
Sender = Callable[[int, list[int], float], Awaitable[None]]
# Called once per stream after its last send, with its last chunk_seq (-1: none).
Ender = Callable[[int, int], Awaitable[None]]


class BenchError(Exception):
    """A failure that makes the run's figures meaningless."""


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    prefix: str
    streams: int
    conversations: int
    rates: list[int]
    batches: list[int]
    seconds: float
    in_flight: int
    settle: float
    gap_timeout_ms: int
    route: str
    transport: str
    json_out: str | None


@dataclass(frozen=True)
class Stream:
    index: int
    conversation: str  # the conversation's id
    stream_id: str
    writers: list[str]  # worker URLs its requests go to, in turn
    reader: str  # worker URL of its SSE reader


@dataclass
class Sent:
    """What the producers did in one mode."""

    began: float = 0.0  # time.time() of the schedule's start
    ended: float = 0.0  # when the last stream had sent (and ended)
    last_seq: dict[int, int] = field(default_factory=dict)  # stream index -> last chunk_seq sent
    acked: int = 0  # chunks whose request was answered with success
    late: list[float] = field(default_factory=list)  # send time - due time, per request
    requests: list[float] = field(default_factory=list)  # request latency, per request
    errors: list[str] = field(default_factory=list)


@dataclass
class Reading:
    """What one SSE reader saw."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    seqs: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    gaps: list[Any] = field(default_factory=list)
    end: dict[str, Any] | None = None
    last_at: float = 0.0
    error: str | None = None


@dataclass
class Result:
    mode: str
    rate: int  # offered chunks/s
    batch: int
    streams: int
    chunks: int  # delivered
    records: int  # Kafka records written for them (bus: how much the conversations log grew, ends included)
    seconds: float
    chunks_per_s: float
    reached: float  # chunks_per_s / rate
    p50_ms: float
    p99_ms: float
    max_ms: float
    late_p99_ms: float  # how late the producers sent, p99 over requests
    request_p99_ms: float
    client_cpu: float  # cores
    load: float  # the machine's 1-minute load average at the end: others' work shows here
    worker_cpu: list[float | None]  # cores per worker (bus mode only)
    idle_cpu: list[float | None] = field(default_factory=list)  # the same with readers open, no chunks
    worker_ms_per_chunk: float | None = None  # the workers' CPU time over the mode / chunks delivered
    rate_vs_raw: float | None = None
    p50_vs_raw: float | None = None
    p99_vs_raw: float | None = None
    ok: bool = False  # reached its offered rate and p99 < TARGET_P99_MS, verified
    problems: list[str] = field(default_factory=list)


# --- inputs -----------------------------------------------------------------------


def numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_fleet_options(p, prefix=True)
    p.add_argument("--streams", type=int, default=TARGET_STREAMS, help="concurrent streams")
    p.add_argument("--conversations", type=int, default=TARGET_STREAMS, help="streams go round-robin")
    p.add_argument("--rate", default=str(TARGET_RATE), help="offered chunks/s in total; a list runs each")
    p.add_argument("--batch", default="1,10", help="chunks per request; a list runs each")
    p.add_argument("--seconds", type=float, default=10.0, help="how long each mode sends")
    p.add_argument("--in-flight", type=int, default=8, help="requests in flight per stream, at most")
    p.add_argument("--settle", type=float, default=2.0, help="idle time with the readers open, seconds")
    p.add_argument("--gap-timeout-ms", type=int, default=2000, help="the readers' gap_timeout_ms")
    p.add_argument(
        "--route",
        choices=("any", "owner"),
        default="any",
        help="any: requests and readers spread over the workers; owner: all to the conversation's owner",
    )
    p.add_argument(
        "--transport",
        choices=("http", "ws"),
        default="http",
        help="http: a POST .../stream-chunks per batch; ws: one WebSocket per stream, a frame per batch",
    )
    a = p.parse_args(argv)
    workers = worker_urls(a.workers)
    rates, batches = numbers(a.rate), numbers(a.batch)
    if not workers:
        p.error("--workers needs at least one URL")
    if a.streams < 1 or a.conversations < 1 or a.in_flight < 1 or a.seconds <= 0:
        p.error("--streams, --conversations, --in-flight and --seconds must be positive")
    if not rates or min(rates) < 1 or not batches or not all(1 <= b <= 1000 for b in batches):
        p.error("--rate must be positive, --batch between 1 and 1000")
    return Config(
        workers,
        a.bootstrap,
        a.prefix,
        a.streams,
        min(a.conversations, a.streams),
        rates,
        batches,
        a.seconds,
        a.in_flight,
        a.settle,
        a.gap_timeout_ms,
        a.route,
        a.transport,
        a.json_out,
    )


# --- the bus API ----------------------------------------------------------------


async def request(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any, str | None]:
    """One request, retried while the bus answers a retriable 503/504: (status, body, owner)."""
    for _ in range(MAX_ATTEMPTS):
        async with session.request(method, url, json=body) as r:
            answer = await r.json(content_type=None)
            code = error_code(answer)
            if r.status < 503 or code not in RETRIABLE:
                return r.status, answer, r.headers.get(WORKER_HEADER)
        await asyncio.sleep(RETRY_SLEEP_S)
    raise BenchError(f"{method} {url} kept failing with {code}")


def error_code(answer: Any) -> str | None:
    """The bus's error code in an answer ({"error": {"code": ...}}), if any."""
    error = answer.get("error") if isinstance(answer, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def conversation_path(conv_id: str) -> str:
    return f"/v1/conversations/{NAMESPACE}/{TENANT}/{conv_id}"


async def new_conversation(session: aiohttp.ClientSession, worker: str, conv_id: str) -> None:
    body = {"namespace": NAMESPACE, "tenant": TENANT, "id": conv_id}
    status, answer, _ = await request(session, "POST", f"{worker}/v1/conversations", body)
    if status != 201:
        raise BenchError(f"creating conversation {conv_id}: HTTP {status}: {answer}")


async def warm_up(session: aiohttp.ClientSession, worker: str, conv_id: str, stream_id: str) -> str | None:
    """One chunk and an end on a throw-away stream; returns the conversation's owner URL."""
    path = worker + conversation_path(conv_id)
    body = {"stream_id": stream_id, "chunk_seq": 0, "data": "warm-up"}
    status, answer, owner = await request(session, "POST", f"{path}/stream-chunks", body)
    if status != 200:
        raise BenchError(f"warm-up chunk in {conv_id}: HTTP {status}: {answer}")
    status, answer, _ = await request(
        session, "POST", f"{path}/stream-end", {"stream_id": stream_id, "last_chunk_seq": 0}
    )
    if status != 200:
        raise BenchError(f"warm-up end in {conv_id}: HTTP {status}: {answer}")
    return owner


async def delete_conversation(session: aiohttp.ClientSession, worker: str, conv_id: str) -> None:
    """Best effort, like the topic's delete."""
    try:
        status, answer, _ = await request(session, "DELETE", worker + conversation_path(conv_id))
        if status != 200:
            print(f"warning: deleting conversation {conv_id}: HTTP {status}: {answer}", file=sys.stderr)
    except (BenchError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
        print(f"warning: deleting conversation {conv_id} failed: {exc!r}", file=sys.stderr)


async def create_topic(session: aiohttp.ClientSession, worker: str, name: str) -> tuple[str, str]:
    """A scratch topic for the raw mode: (namespace/tenant/name, its Kafka topic)."""
    spec = {"namespace": NAMESPACE, "tenant": TENANT, "name": name, "partitions": RAW_PARTITIONS}
    timeout = aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_S)
    async with session.post(f"{worker}/v1/topics", json=spec, timeout=timeout) as resp:
        answer = await resp.json(content_type=None)
        if resp.status != 201:
            raise BenchError(f"creating topic {name}: HTTP {resp.status}: {answer}")
    return f"{NAMESPACE}/{TENANT}/{name}", str(answer["kafka_topic"])


async def delete_topic(session: aiohttp.ClientSession, worker: str, ref: str) -> None:
    try:
        timeout = aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_S)
        async with session.delete(f"{worker}/v1/topics/{ref}", timeout=timeout) as resp:
            if resp.status != 200:
                print(f"warning: deleting {ref}: HTTP {resp.status}: {await resp.text()}", file=sys.stderr)
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"warning: deleting {ref} failed: {exc!r}", file=sys.stderr)


async def worker_cpu_seconds(session: aiohttp.ClientSession, workers: list[str]) -> list[float | None]:
    """process_cpu_seconds_total of each worker; None where /metrics cannot be read."""
    found: list[float | None] = []
    for w in workers:
        value = None
        try:
            async with session.get(f"{w}/metrics") as resp:
                text = await resp.text() if resp.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError):
            text = ""
        for line in text.splitlines():
            if line.startswith("process_cpu_seconds_total "):
                value = float(line.split()[1])
        found.append(value)
    return found


# --- producing ----------------------------------------------------------------------


async def produce(cfg: Config, rate: int, batch: int, send: Sender, end: Ender, start_seq: int = 0) -> Sent:
    """Run every stream's producer on the open-loop schedule described at the top, from
    chunk_seq start_seq on."""
    per_stream = rate / cfg.streams  # chunks/s of one stream
    planned = max(1, round(per_stream * cfg.seconds))
    interval = batch / per_stream  # between one stream's requests
    sent = Sent(began=time.time() + 0.05)
    deadline = sent.began + cfg.seconds + interval

    async def one(index: int, seqs: list[int], gate: asyncio.Semaphore) -> None:
        t = time.time()
        try:
            await asyncio.wait_for(send(index, seqs, t), REQUEST_TIMEOUT_S)
            sent.acked += len(seqs)
            sent.requests.append(time.time() - t)
        except (BenchError, KafkaError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            sent.errors.append(f"stream {index} chunks {seqs[0]}..{seqs[-1]}: {type(exc).__name__}: {exc}")
        finally:
            gate.release()

    async def lane(index: int) -> None:
        gate = asyncio.Semaphore(cfg.in_flight)
        tasks: list[asyncio.Task[None]] = []
        last = start_seq - 1
        for first in range(0, planned, batch):
            seqs = list(range(start_seq + first, start_seq + min(first + batch, planned)))
            # Request k of stream i is due at (k + i/S) intervals: the streams' requests are
            # spread evenly over the run, and all of them fall within its first D seconds.
            due = sent.began + (first // batch + index / cfg.streams) * interval
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            now = time.time()
            if now > deadline:
                gate.release()
                break
            sent.late.append(max(0.0, now - due))
            tasks.append(asyncio.create_task(one(index, seqs, gate)))
            last = seqs[-1]
        await asyncio.gather(*tasks)
        sent.last_seq[index] = last
        try:
            await asyncio.wait_for(end(index, last), REQUEST_TIMEOUT_S)
        except (BenchError, KafkaError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            sent.errors.append(f"stream {index} end: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(lane(i) for i in range(cfg.streams)))
    sent.ended = time.time()
    return sent


def chunk_data(t: float) -> dict[str, Any]:
    return {"t": t, "text": "tok"}


def bus_sender(session: aiohttp.ClientSession, streams: list[Stream]) -> Sender:
    turns = [itertools.cycle(s.writers) for s in streams]

    async def send(index: int, seqs: list[int], t: float) -> None:
        s = streams[index]
        body: dict[str, Any] = {"stream_id": s.stream_id}
        if len(seqs) == 1:
            body |= {"chunk_seq": seqs[0], "data": chunk_data(t)}
        else:
            body["chunks"] = [{"chunk_seq": n, "data": chunk_data(t)} for n in seqs]
        url = next(turns[index]) + conversation_path(s.conversation) + "/stream-chunks"
        status, answer, _ = await request(session, "POST", url, body)
        if status != 200 or not isinstance(answer, dict) or answer.get("accepted") != len(seqs):
            raise BenchError(f"HTTP {status}: {answer}")

    return send


def bus_ender(session: aiohttp.ClientSession, streams: list[Stream]) -> Ender:
    async def end(index: int, last: int) -> None:
        s = streams[index]
        url = s.writers[0] + conversation_path(s.conversation) + "/stream-end"
        body = {"stream_id": s.stream_id, "status": "complete", "last_chunk_seq": last}
        status, answer, _ = await request(session, "POST", url, body)
        code = error_code(answer)
        # stream_ended: an earlier attempt that timed out was written after all.
        if status != 200 and code != "stream_ended":
            raise BenchError(f"HTTP {status}: {answer}")

    return end


class Sockets:
    """--transport ws: one WebSocket per stream (to its first writer), a frame per batch;
    the bus answers a stream's frames in order, so each answer settles the oldest waiter."""

    def __init__(self, session: aiohttp.ClientSession, streams: list[Stream]) -> None:
        self.session, self.streams = session, streams
        self.sockets: dict[int, aiohttp.ClientWebSocketResponse] = {}
        self.waiting: dict[int, deque[asyncio.Future[dict[str, Any]]]] = {s.index: deque() for s in streams}
        self.readers: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        async def one(s: Stream) -> None:
            base = s.writers[0].replace("http", "ws", 1)
            url = f"{base}/v1/streams/{NAMESPACE}/{TENANT}/{s.conversation}/{s.stream_id}/write"
            self.sockets[s.index] = await self.session.ws_connect(url, max_msg_size=0)
            self.readers.append(asyncio.create_task(self.answers(s.index)))

        await asyncio.gather(*(one(s) for s in self.streams))

    async def answers(self, index: int) -> None:
        async for message in self.sockets[index]:
            answer = json.loads(message.data)
            waiting = self.waiting[index]
            if "frame" not in answer:  # pushed (a cancel): every waiter fails
                while waiting:
                    waiting.popleft().set_exception(BenchError(f"pushed: {answer}"))
            elif waiting:
                waiting.popleft().set_result(answer)
        for waiter in self.waiting[index]:
            if not waiter.done():
                waiter.set_exception(BenchError("the socket closed"))

    async def frame(self, index: int, body: dict[str, Any]) -> dict[str, Any]:
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[index].append(answer)
        await self.sockets[index].send_str(json.dumps(body))
        return await answer

    async def send(self, index: int, seqs: list[int], t: float) -> None:
        answer = await self.frame(index, {"chunks": [{"chunk_seq": n, "data": chunk_data(t)} for n in seqs]})
        if answer.get("accepted") != len(seqs):
            raise BenchError(f"frame answer: {answer}")

    async def end(self, index: int, last: int) -> None:
        answer = await self.frame(index, {"end": {"status": "complete", "last_chunk_seq": last}})
        if "ended" not in answer:
            raise BenchError(f"end answer: {answer}")

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets.values()), return_exceptions=True)
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


# --- reading --------------------------------------------------------------------------


def parse_event(block: bytes) -> tuple[str | None, str]:
    """(event name, data) of one SSE block; (None, "") for a comment."""
    name: str | None = None
    data = ""
    for line in block.decode().split("\n"):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
    return name, data


async def read_stream(session: aiohttp.ClientSession, url: str, reading: Reading) -> None:
    """Follow one stream's SSE until its end event (or an error, kept in reading.error)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
    try:
        for _ in range(MAX_ATTEMPTS):
            async with session.get(url, timeout=timeout) as resp:
                if resp.status == 503:
                    await asyncio.sleep(RETRY_SLEEP_S)
                    continue
                if resp.status != 200:
                    reading.error = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                    return
                buffer = b""
                async for data in resp.content.iter_any():
                    now = time.time()  # one read: every event in it arrived now
                    buffer += data
                    *blocks, buffer = buffer.split(b"\n\n")
                    for block in blocks:
                        name, text = parse_event(block)
                        if name is None:
                            reading.ready.set()  # ": stream", or a keep-alive
                        elif name == "chunk":
                            event = json.loads(text)
                            reading.seqs.append(event["chunk_seq"])
                            reading.latencies.append(now - event["data"]["t"])
                            reading.last_at = now
                        elif name == "gap":
                            reading.gaps.append(json.loads(text))
                        elif name == "end":
                            reading.end = json.loads(text)
                            return
                        else:
                            reading.error = f"unexpected event {name}: {text[:200]}"
                            return
                reading.error = "the stream closed before its end event"
                return
        reading.error = "kept answering 503"
    except (aiohttp.ClientError, ValueError, KeyError) as exc:
        reading.error = f"{type(exc).__name__}: {exc}"
    finally:
        reading.ready.set()  # nobody waits forever for a reader that failed


def check_readings(streams: list[Stream], readings: list[Reading], sent: Sent) -> list[str]:
    problems = []
    for s, r in zip(streams, readings, strict=True):
        last = sent.last_seq.get(s.index, -1)
        what = f"stream {s.stream_id}"
        if r.error is not None:
            problems.append(f"{what}: {r.error}")
        if r.seqs != list(range(last + 1)):
            dups = len(r.seqs) - len(set(r.seqs))
            problems.append(f"{what}: {len(r.seqs)} chunks ({dups} repeated), not 0..{last} in order")
        if r.gaps:
            problems.append(f"{what}: gaps {r.gaps[:3]}")
        if r.end is None:
            problems.append(f"{what}: no end event")
        elif r.end.get("last_chunk_seq") != last or r.end.get("status") != "complete":
            problems.append(f"{what}: end {r.end}, expected complete at {last}")
    return problems


# --- the modes ------------------------------------------------------------------------


async def log_end(cfg: Config, offsets: AIOKafkaConsumer) -> int:
    """The conversations log's size: the sum of its partitions' end offsets."""
    topic = f"{cfg.prefix}-conversations"
    partitions = [TopicPartition(topic, p) for p in range(STATE_PARTITIONS)]
    return sum((await offsets.end_offsets(partitions)).values())


async def bus_mode(
    cfg: Config,
    session: aiohttp.ClientSession,
    offsets: AIOKafkaConsumer,
    conversations: list[tuple[str, str]],
    rate: int,
    batch: int,
) -> tuple[Result, list[str]]:
    """Readers first, then the producers; conversations are (id, owner URL)."""
    tag = secrets.token_hex(2)
    streams = []
    for i in range(cfg.streams):
        conv_id, owner = conversations[i % len(conversations)]
        if cfg.route == "owner":
            writers, reader = [owner], owner
        else:  # a stream's requests alternate over the workers, starting at a different one each
            writers = cfg.workers[i % len(cfg.workers) :] + cfg.workers[: i % len(cfg.workers)]
            reader = cfg.workers[(i + 1) % len(cfg.workers)]
        streams.append(Stream(i, conv_id, f"r{rate}-b{batch}-{tag}-{i}", writers, reader))
    readings = [Reading() for _ in streams]
    readers = [
        asyncio.create_task(
            read_stream(
                session,
                f"{s.reader}/v1/streams/{NAMESPACE}/{TENANT}/{s.conversation}/{s.stream_id}"
                f"?gap_timeout_ms={cfg.gap_timeout_ms}",
                r,
            )
        )
        for s, r in zip(streams, readings, strict=True)
    ]
    try:
        async with asyncio.timeout(READY_S):
            await asyncio.gather(*(r.ready.wait() for r in readings))
        await prime(session, streams, readings)
        idle_before, idle_began = await worker_cpu_seconds(session, cfg.workers), time.perf_counter()
        await asyncio.sleep(cfg.settle)
        workers_before = await worker_cpu_seconds(session, cfg.workers)
        idle_cpu = cores(idle_before, workers_before, time.perf_counter() - idle_began)
        log_before = await log_end(cfg, offsets)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        sockets = Sockets(session, streams)
        sender: Sender
        ender: Ender
        if cfg.transport == "ws":
            await sockets.open()
            sender, ender = sockets.send, sockets.end
        else:
            sender, ender = bus_sender(session, streams), bus_ender(session, streams)
        try:
            sent = await produce(cfg, rate, batch, sender, ender, start_seq=1)
        finally:
            await sockets.close()
        await asyncio.wait(readers, timeout=DRAIN_S)
        log_after = await log_end(cfg, offsets)
        wall = time.perf_counter() - wall_before
        client_cpu = (time.process_time() - cpu_before) / wall
        workers_after = await worker_cpu_seconds(session, cfg.workers)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    for r in readings:
        if r.error is None and r.end is None:
            r.error = f"no end after {DRAIN_S:.0f} s"
    problems = sent.errors + check_readings(streams, readings, sent)
    latencies = [x for r in readings for x in r.latencies]
    last_delivery = max((r.last_at for r in readings), default=sent.ended)
    worker_cpu = cores(workers_before, workers_after, wall)
    records = log_after - log_before
    mode = "bus" if cfg.transport == "http" else "bus-ws"
    result = summarise(mode, cfg, rate, batch, sent, latencies, records, last_delivery, client_cpu)
    result.worker_cpu = worker_cpu
    result.idle_cpu = idle_cpu
    spent = [c for c in worker_cpu if c is not None]
    if spent and latencies:
        result.worker_ms_per_chunk = round(sum(spent) * wall / len(latencies) * 1000, 2)
    return result, problems


async def prime(session: aiohttp.ClientSession, streams: list[Stream], readings: list[Reading]) -> None:
    """Chunk 0 of every stream, untimed, and wait until every reader has it: the readers'
    Kafka consumers are then running and in place (opening one costs its worker a Kafka
    client of its own, metadata and all)."""
    failed = [r.error for r in readings if r.error is not None]
    if failed:
        raise BenchError(f"{len(failed)} readers failed to open, the first: {failed[0]}")
    send = bus_sender(session, streams)
    try:
        async with asyncio.timeout(READY_S):
            await asyncio.gather(*(send(s.index, [0], time.time()) for s in streams))
            while not all(r.seqs or r.error for r in readings):
                await asyncio.sleep(0.05)
    except TimeoutError:
        waiting = sum(1 for r in readings if not r.seqs)
        raise BenchError(f"{waiting} readers had no chunk 0 after {READY_S:.0f} s") from None
    failed = [r.error for r in readings if r.error is not None]
    if failed:
        raise BenchError(f"{len(failed)} readers failed, the first: {failed[0]}")
    for r in readings:
        r.latencies.clear()  # chunk 0 is not timed


def cores(before: list[float | None], after: list[float | None], wall: float) -> list[float | None]:
    return [
        round((a - b) / wall, 2) if a is not None and b is not None else None
        for b, a in zip(before, after, strict=True)
    ]


async def raw_mode(cfg: Config, kafka_topic: str, rate: int, batch: int) -> tuple[Result, list[str]]:
    tag = secrets.token_hex(2)
    keys = [f"r{rate}-b{batch}-{tag}-{i}".encode() for i in range(cfg.streams)]
    producer = AIOKafkaProducer(
        bootstrap_servers=cfg.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=int(REQUEST_TIMEOUT_S * 1000),
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cfg.bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await producer.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(kafka_topic, p) for p in range(RAW_PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)  # resolve the end now, before anything is produced
        seen: set[tuple[bytes, int]] = set()
        latencies: list[float] = []
        repeats, records, last_at, stop = 0, 0, 0.0, asyncio.Event()

        async def consume() -> None:
            nonlocal repeats, records, last_at
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=2000)
                now = time.time()
                for fetched in batches.values():
                    records += len(fetched)
                    for record in fetched:
                        value = json.loads(record.value)
                        for chunk in value["chunks"]:
                            key = (record.key, chunk["chunk_seq"])
                            repeats += key in seen
                            seen.add(key)
                            latencies.append(now - chunk["data"]["t"])
                            last_at = now

        async def send(index: int, seqs: list[int], t: float) -> None:
            chunks = [{"chunk_seq": n, "data": chunk_data(t)} for n in seqs]
            value = json.dumps({"stream_id": keys[index].decode(), "chunks": chunks}).encode()
            await (await producer.send(kafka_topic, value=value, key=keys[index]))

        async def end(index: int, last: int) -> None:
            return None

        reader = asyncio.create_task(consume())
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        sent = await produce(cfg, rate, batch, send, end)
        expected = sum(last + 1 for last in sent.last_seq.values())
        until = time.monotonic() + DRAIN_S
        while len(seen) < expected and time.monotonic() < until and not reader.done():
            await asyncio.sleep(0.05)
        stop.set()
        await reader
        wall = time.perf_counter() - wall_before
        client_cpu = (time.process_time() - cpu_before) / wall
    finally:
        await producer.stop()
        await consumer.stop()
    problems = list(sent.errors)
    if len(seen) != expected or repeats:
        problems.append(f"consumed {len(seen)} distinct chunks ({repeats} repeated), expected {expected}")
    result = summarise("raw", cfg, rate, batch, sent, latencies, records, last_at or sent.ended, client_cpu)
    return result, problems


def summarise(
    mode: str,
    cfg: Config,
    rate: int,
    batch: int,
    sent: Sent,
    latencies: list[float],
    records: int,
    last_delivery: float,
    client_cpu: float,
) -> Result:
    seconds = max(last_delivery - sent.began, 1e-9)
    delivered = len(latencies)

    def ms(samples: list[float], pct: float) -> float:
        return round(percentile(samples, pct) * 1000, 1)

    return Result(
        mode=mode,
        rate=rate,
        batch=batch,
        streams=cfg.streams,
        chunks=delivered,
        records=records,
        seconds=round(seconds, 2),
        chunks_per_s=round(delivered / seconds, 1),
        reached=round(delivered / seconds / rate, 3),
        p50_ms=ms(latencies, 50),
        p99_ms=ms(latencies, 99),
        max_ms=ms(latencies, 100),
        late_p99_ms=ms(sent.late, 99),
        request_p99_ms=ms(sent.requests, 99),
        client_cpu=round(client_cpu, 2),
        load=round(os.getloadavg()[0], 1),
        worker_cpu=[],
    )


def judge(result: Result, problems: list[str]) -> None:
    result.problems = problems
    result.ok = not problems and result.reached >= REACHED and result.p99_ms < TARGET_P99_MS


def compare(bus: Result, raw: Result) -> None:
    bus.rate_vs_raw = round(bus.chunks_per_s / raw.chunks_per_s, 2) if raw.chunks_per_s else None
    bus.p50_vs_raw = round(bus.p50_ms / raw.p50_ms, 1) if raw.p50_ms else None
    bus.p99_vs_raw = round(bus.p99_ms / raw.p99_ms, 1) if raw.p99_ms else None


# --- the run ------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    header = (
        f"{'mode':<5}{'rate':>7}{'batch':>6}{'chunks':>8}{'records':>8}{'chunks/s':>10}{'reached':>8}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'late p99':>9}{'req p99':>8}"
        f"{'client':>7}{'workers':>11}{'idle':>11}{'ms/ch':>6}{'load':>6}{'x raw':>6}{'p99/raw':>8}{'ok':>4}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        cpu, idle = (
            "+".join("?" if c is None else f"{c:.2f}" for c in x) or "-" for x in (r.worker_cpu, r.idle_cpu)
        )
        vs = "-" if r.rate_vs_raw is None else f"{r.rate_vs_raw:.2f}"
        per = "-" if r.worker_ms_per_chunk is None else f"{r.worker_ms_per_chunk:.2f}"
        p99 = "-" if r.p99_vs_raw is None else f"{r.p99_vs_raw:.1f}"
        print(
            f"{r.mode:<5}{r.rate:>7}{r.batch:>6}{r.chunks:>8}{r.records:>8}{r.chunks_per_s:>10.0f}{r.reached:>8.2f}"
            f"{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{r.max_ms:>8.1f}{r.late_p99_ms:>9.1f}{r.request_p99_ms:>8.1f}"
            f"{r.client_cpu:>7.2f}{cpu:>11}{idle:>11}{per:>6}{r.load:>6.1f}"
            f"{vs:>6}{p99:>8}{'yes' if r.ok else 'no':>4}"
        )
    print(
        "rate: offered chunks/s; chunks: delivered; records: Kafka records written for them (bus:\n"
        "chunk records and the stream ends);\n"
        "reached: delivered/offered; late p99: how late producers sent (behind schedule);\n"
        "req p99: one POST (or raw send); client, workers: CPU cores; idle: the workers' CPU with\n"
        "the readers open and no chunks flowing; ms/ch: the workers' CPU ms per chunk delivered;\n"
        "load: 1-min load average (2 cores: above ~3, others' work competes);\n"
        "x raw: chunks/s over raw's; p99/raw: p99 over raw's;\n"
        f"ok: reached >= {REACHED}, p99 < {TARGET_P99_MS:.0f} ms and every chunk verified"
    )


def target_verdict(cfg: Config, results: list[Result]) -> str:
    tried = [r for r in results if r.mode.startswith("bus") and r.rate >= TARGET_RATE]
    if cfg.streams < TARGET_STREAMS or not tried:
        return f"target ({TARGET_STREAMS} streams, {TARGET_RATE} chunks/s, p99 < 50 ms): not tried"
    met = [r for r in tried if r.ok]
    verdict = f"MET at batch {', '.join(str(r.batch) for r in met)}" if met else "NOT MET"
    return f"target ({TARGET_STREAMS} streams, {TARGET_RATE} chunks/s, p99 < 50 ms): {verdict}"


def write_json(path: str, cfg: Config, results: list[Result], verdict: str) -> None:
    with open(path, "w") as f:
        json.dump(
            {"config": asdict(cfg), "results": [asdict(r) for r in results], "target": verdict}, f, indent=2
        )
        f.write("\n")


async def bench(cfg: Config) -> int:
    suffix = secrets.token_hex(3)
    # A connection per request that can be in flight, and one per reader.
    connector = aiohttp.TCPConnector(limit=cfg.streams * (cfg.in_flight + 1) + 16)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    results: list[Result] = []
    async with aiohttp.ClientSession(headers=auth_headers(), timeout=timeout, connector=connector) as session:
        await check_health(session, cfg.workers)
        if None in await worker_cpu_seconds(session, cfg.workers):
            print("note: /metrics unreadable (no admin key?): worker CPU not reported", file=sys.stderr)
        created: list[str] = []
        topic_ref = None
        offsets = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap, group_id=None, enable_auto_commit=False)
        await offsets.start()
        try:
            gate = asyncio.Semaphore(10)

            async def prepare(i: int, conv_id: str) -> tuple[str, str]:
                async with gate:
                    worker = cfg.workers[i % len(cfg.workers)]
                    await new_conversation(session, worker, conv_id)
                    created.append(conv_id)
                    owner = await warm_up(session, worker, conv_id, f"warm-{suffix}")
                    return conv_id, owner or worker

            ids = [f"bs{suffix}-{i}" for i in range(cfg.conversations)]
            conversations = list(await asyncio.gather(*(prepare(i, c) for i, c in enumerate(ids))))
            topic_ref, kafka_topic = await create_topic(session, cfg.workers[0], f"streams-{suffix}")
            for rate, batch in itertools.product(cfg.rates, cfg.batches):
                raw, raw_problems = await raw_mode(cfg, kafka_topic, rate, batch)
                bus, bus_problems = await bus_mode(cfg, session, offsets, conversations, rate, batch)
                judge(raw, raw_problems)
                judge(bus, bus_problems)
                compare(bus, raw)
                results += [raw, bus]
                print_table(results[-2:])
                print(flush=True)
        finally:
            await offsets.stop()
            if topic_ref is not None:
                await delete_topic(session, cfg.workers[0], topic_ref)
            for conv_id in created:
                await delete_conversation(session, cfg.workers[0], conv_id)
    print("all modes:")
    print_table(results)
    verdict = target_verdict(cfg, results)
    print(verdict)
    if cfg.json_out:
        write_json(cfg.json_out, cfg, results, verdict)
    failed = [r for r in results if r.problems]
    if failed:
        print("\n!!! BENCHMARK FAILED: chunks lost, repeated, out of order or unended !!!", file=sys.stderr)
        for r in failed:
            print(
                f"!!! rate {r.rate}, batch {r.batch}, {r.mode}: {len(r.problems)} problems", file=sys.stderr
            )
            for p in r.problems[:MAX_ERRORS_SHOWN]:
                print(f"!!!   {p}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        return asyncio.run(bench(cfg))
    except (BenchError, KafkaError, TimeoutError) as exc:
        print(f"\n!!! BENCHMARK ABORTED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
