"""SSE readers' memory: what R slow readers of a topic with a backlog cost a worker, and
whether it gets the memory back when they leave.

1. Fill: a fresh bus topic (3 partitions) gets --records records of --payload-bytes each
   through `POST /v1/publish/batch` (500 a request) on the first of --workers; the sum of
   the topic's end offsets must then equal --records.
2. Baseline: --settle seconds later, the reading worker's RSS (the last of --workers: its
   process found by its --web-port, or --pid) is the median of its samples over
   BASELINE_S seconds. RSS is VmRSS of /proc/PID/status, sampled every 0.5 s for the
   whole run.
3. Read: R readers (--readers) open `GET /v1/subscribe/...?from=earliest` on that worker,
   each on a raw socket with a small receive buffer that it reads at --read-rate bytes/s:
   the backlog waits in the server, the case that took a worker from 206 MB to 1.18 GB.
   They are split over API keys of their own (--per-key each, under the worker's
   AGENTBUS_MAX_SSE_CLIENTS_PER_KEY), created for the run and revoked at its end. After
   all are open they read for --hold seconds. Peak = the highest sample while readers
   are open; per reader = (peak - baseline) / R.
4. Leave: every reader resets its connection at once (SO_LINGER 0: an RST, the abrupt
   disconnect), and the RSS is read --after seconds later (10 and 30). The worker's
   `agentbus_sse_clients` must be back to what it was, its `/metrics` must count no 500
   on the subscribe route, and its log (its stdout: scripts/fleet's worker-PORT.log, or
   --log) must hold no traceback or unhandled error written since the readers opened.

Verdict: bounded when the per-reader increment is at most PER_READER_MAX_MIB; returned
when the last --after sample is within RETURNED_SHARE of the baseline plus RETURNED_SLACK_MIB.
A reader that did not get 200 and its first comment, a short fill, a 500 or a traceback
fails the run (exit 1); a verdict not met is printed, not an exit status (scripts/bench
judges it). The load average is printed at the start and the end: memory figures move
far less with a busy machine than speeds do, but the fill and the readers' pace do.

Needs a running broker and fleet: `scripts/kafka up && scripts/fleet up --workers 2`.

    python bench/sse_memory.py [--workers URL,URL] [--bootstrap HOST:PORT]
        [--records N] [--payload-bytes B] [--readers R] [--read-rate BYTES_PER_S]
        [--hold S] [--after S,S] [--settle S] [--per-key K] [--pid PID] [--log FILE]
        [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import re
import secrets
import socket
import statistics
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from options import add_fleet_options, worker_urls
from prometheus_client.parser import text_string_to_metric_families

# bench/publish.py and bench/recovery.py: found next to this file when run as a script.
from publish import (
    MAX_BATCH,
    NAMESPACE,
    TENANT,
    BenchError,
    BusTopic,
    auth_headers,
    batch_body,
    check_health,
    create_topic,
    delete_topic,
    drive,
    exit_status,
    http_sender,
    make_payload,
    run_bench,
    stored_records,
)
from recovery import find_worker
from sse_latency import LoadAverage, load

MIB = 1024 * 1024
PER_READER_MAX_MIB = 2.0  # bounded: what one slow reader may add to the worker's RSS
RETURNED_SHARE = 0.2  # returned: the RSS after the readers left, within this share of the baseline
RETURNED_SLACK_MIB = 16.0  # ... plus this (allocator arenas, caches warmed by the run)
SAMPLE_S = 0.5
BASELINE_S = 3.0
FILL_CONCURRENCY = 8
RECEIVE_BUFFER = 16 * 1024  # each reader's SO_RCVBUF (Linux doubles it)
READ_TICK_S = 0.1
CONNECT_TIMEOUT_S = 30.0  # one reader: its answer's head and first comment
REQUEST_TIMEOUT_S = 30.0
MAX_SHOWN = 5
SUBSCRIBE_ROUTE = "/v1/subscribe/{namespace}/{tenant}/{name}"
# What a disconnect must not leave in the worker's log.
ERROR_MARKERS = ("Traceback (most recent call last)", "unhandled error", "Error handling request")


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    records: int
    payload_bytes: int
    readers: int
    read_rate: int  # bytes/s, each reader
    hold: float
    after: list[float]
    settle: float
    per_key: int
    pid: int | None
    log: str | None
    json_out: str | None


@dataclass
class Samples:
    """The worker's RSS over the run: (seconds since the start, KiB, phase)."""

    pid: int
    began: float = field(default_factory=time.monotonic)
    phase: str = "fill"
    rows: list[tuple[float, int, str]] = field(default_factory=list)

    def take(self) -> int:
        kib = rss_kib(Path(f"/proc/{self.pid}/status").read_text())
        self.rows.append((round(time.monotonic() - self.began, 2), kib, self.phase))
        return kib

    def of(self, phase: str) -> list[int]:
        return [kib for _, kib, p in self.rows if p == phase]


@dataclass
class Reader:
    """One slow SSE reader: its socket, what it got and what went wrong."""

    sock: socket.socket
    status: int | None = None
    received: int = 0  # bytes, the answer's head included
    error: str | None = None


@dataclass(frozen=True)
class Memory:
    baseline_mib: float
    peak_mib: float
    per_reader_mib: float
    after_mib: list[float]  # at each of cfg.after seconds after the disconnect
    bounded: bool
    returned: bool


@dataclass(frozen=True)
class Disconnect:
    """What the abrupt disconnect left on the worker."""

    errors_500: int  # subscribe answers counted as 500 in /metrics
    log_errors: list[str]  # traceback or unhandled-error lines in its log
    sse_clients_before: float
    sse_clients_after: float


# --- pure parts ------------------------------------------------------------------------


def rss_kib(status: str) -> int:
    """VmRSS of a /proc/PID/status text, in KiB."""
    found = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.MULTILINE)
    if found is None:
        raise BenchError("no VmRSS in /proc/PID/status: the process is gone")
    return int(found.group(1))


def judge(baseline_kib: float, peak_kib: float, after_kib: list[int], readers: int) -> Memory:
    """Per reader at most PER_READER_MAX_MIB; the last sample after the disconnect within
    RETURNED_SHARE of the baseline plus RETURNED_SLACK_MIB."""
    per_reader = (peak_kib - baseline_kib) / 1024 / readers
    allowed = baseline_kib * (1 + RETURNED_SHARE) + RETURNED_SLACK_MIB * 1024
    return Memory(
        baseline_mib=round(baseline_kib / 1024, 1),
        peak_mib=round(peak_kib / 1024, 1),
        per_reader_mib=round(per_reader, 3),
        after_mib=[round(kib / 1024, 1) for kib in after_kib],
        bounded=per_reader <= PER_READER_MAX_MIB,
        returned=bool(after_kib) and after_kib[-1] <= allowed,
    )


def log_errors(text: str) -> list[str]:
    """The lines of a worker's log that say a request failed: a traceback, an unhandled error."""
    return [line for line in text.splitlines() if any(m in line for m in ERROR_MARKERS)]


def metric(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The sum of a metric's samples (in Prometheus text) whose labels include `labels`."""
    wanted = (labels or {}).items()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and wanted <= s.labels.items()
    )


def answer_of(data: bytes) -> tuple[int | None, bytes]:
    """The status of an HTTP answer's first bytes (None until its status line is whole) and
    what follows its head (the body, chunked or not: only searched, never decoded)."""
    head, _, body = data.partition(b"\r\n\r\n")
    words = head.split(b"\r\n", 1)[0].split() if b"\r\n" in data else []
    status = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
    return status, body


def opened(data: bytes) -> bool:
    """An answer's head is whole and, for a 200, its stream's first event or comment is there."""
    if b"\r\n\r\n" not in data:
        return False
    status, body = answer_of(data)
    return status != 200 or b"\n\n" in body


def reader_problems(readers: list[Reader]) -> list[str]:
    """Readers that never got their stream, or lost it before they were told to leave."""
    bad = [r for r in readers if r.status != 200 or r.error]
    shown = [f"reader: HTTP {r.status}, {r.error or 'no error'}" for r in bad[:MAX_SHOWN]]
    return [f"{len(bad)} of {len(readers)} readers failed, the first ones:", *shown] if bad else []


# --- the fill and the keys -------------------------------------------------------------------


async def fill(session: aiohttp.ClientSession, cfg: Config, topic: BusTopic) -> float:
    """Publish cfg.records records to the topic; the seconds it took."""
    body = batch_body(topic, make_payload(cfg.payload_bytes))
    send = http_sender(session, cfg.workers[:1], "/v1/publish/batch", body)
    run = await drive(send, 0, cfg.records, MAX_BATCH, FILL_CONCURRENCY)
    if run.errors:
        raise BenchError(f"the fill failed: {len(run.errors)} requests, the first: {run.errors[0]}")
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        stored = await stored_records(consumer, topic)
    finally:
        await consumer.stop()
    if stored != cfg.records:
        raise BenchError(f"the topic holds {stored} records after the fill, not {cfg.records}")
    return run.seconds


async def reader_keys(session: aiohttp.ClientSession, cfg: Config, topic: BusTopic) -> list[tuple[str, str]]:
    """(id, secret) of enough read keys for the readers, --per-key readers each."""
    spec = {
        "role": "tenant",
        "namespace": NAMESPACE,
        "tenant": TENANT,
        "grants": [{"topics": topic.ref.rsplit("/", 1)[1], "actions": ["read"]}],
    }
    keys = []
    for n in range(math.ceil(cfg.readers / cfg.per_key)):
        async with session.post(f"{cfg.workers[0]}/v1/keys", json={**spec, "name": f"sse-memory-{n}"}) as r:
            answer = await r.json(content_type=None)
            if r.status != 201:
                raise BenchError(f"creating a read key: HTTP {r.status}: {answer}")
        keys.append((answer["id"], answer["secret"]))
    return keys


async def revoke(session: aiohttp.ClientSession, worker: str, keys: list[tuple[str, str]]) -> None:
    """Best effort, as deleting the topic is."""
    for key_id, _ in keys:
        try:
            async with session.delete(f"{worker}/v1/keys/{key_id}") as r:
                if r.status != 200:
                    print(f"warning: revoking key {key_id}: HTTP {r.status}", file=sys.stderr)
        except (aiohttp.ClientError, TimeoutError) as exc:
            print(f"warning: revoking key {key_id} failed: {exc!r}", file=sys.stderr)


# --- slow readers ----------------------------------------------------------------------------


async def open_reader(url: str, path: str, secret: str) -> Reader:
    """A reader whose answer's head and first comment (`: subscribed at`) have arrived."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Set before connecting, so the window the server sees stays small from the start.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.setblocking(False)
    reader = Reader(sock)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await loop.sock_connect(sock, (parts.hostname or "127.0.0.1", parts.port or 80))
            request = (
                f"GET {path}?from=earliest HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Authorization: Bearer {secret}\r\nAccept: text/event-stream\r\n\r\n"
            )
            await loop.sock_sendall(sock, request.encode())
            head = b""
            while not opened(head):
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    break
                head += chunk
    except (OSError, TimeoutError) as exc:
        reader.error = f"opening: {type(exc).__name__}: {exc}"
        return reader
    reader.received = len(head)
    reader.status, body = answer_of(head)
    if reader.status == 200 and b": subscribed" not in body:
        reader.error = f"the stream began with {body[:80]!r}"
    elif reader.status != 200:
        reader.error = body[:200].decode(errors="replace") or "no answer"
    return reader


async def read_slowly(reader: Reader, rate: int) -> None:
    """Read `rate` bytes a second until cancelled; a closed stream is an error."""
    loop = asyncio.get_running_loop()
    per_tick = max(1, int(rate * READ_TICK_S))
    while True:
        await asyncio.sleep(READ_TICK_S)
        try:
            chunk = await loop.sock_recv(reader.sock, per_tick)
        except OSError as exc:
            reader.error = f"reading: {type(exc).__name__}: {exc}"
            return
        if not chunk:
            reader.error = f"the worker closed the stream after {reader.received} bytes"
            return
        reader.received += len(chunk)


def reset(reader: Reader) -> None:
    """Close with an RST, not a FIN: a client that vanished, not one that said goodbye."""
    reader.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reader.sock.close()


# --- sampling and the worker's side ------------------------------------------------------------


async def sample_forever(samples: Samples) -> None:
    while True:
        samples.take()
        await asyncio.sleep(SAMPLE_S)


async def metrics_text(session: aiohttp.ClientSession, worker: str) -> str:
    async with session.get(f"{worker}/metrics") as r:
        if r.status != 200:
            raise BenchError(f"{worker}/metrics answered {r.status}")
        return await r.text()


def log_size(path: str | None) -> int:
    return os.path.getsize(path) if path else 0


def log_since(path: str | None, offset: int) -> str:
    if not path:
        return ""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


# --- the run ---------------------------------------------------------------------------------


async def read_and_leave(
    session: aiohttp.ClientSession,
    cfg: Config,
    topic: BusTopic,
    keys: list[tuple[str, str]],
    samples: Samples,
) -> tuple[list[Reader], list[int], float]:
    """Open the readers, let them read, reset them all; the RSS at each --after point and
    the seconds the readers took to open."""
    path = f"/v1/subscribe/{topic.ref}"
    secrets_in_turn = itertools.chain.from_iterable(itertools.repeat(s, cfg.per_key) for _, s in keys)
    samples.phase = "reading"
    began = time.monotonic()
    readers = await asyncio.gather(
        *(open_reader(cfg.workers[-1], path, s) for s in itertools.islice(secrets_in_turn, cfg.readers))
    )
    opening = time.monotonic() - began
    print(
        f"{sum(r.status == 200 for r in readers)} of {cfg.readers} readers open in {opening:.1f} s",
        flush=True,
    )
    reading = [asyncio.create_task(read_slowly(r, cfg.read_rate)) for r in readers if r.status == 200]
    await asyncio.sleep(cfg.hold)
    for task in reading:
        task.cancel()
    await asyncio.gather(*reading, return_exceptions=True)
    samples.phase = "after"
    left = time.monotonic()
    for r in readers:
        reset(r)
    after = []
    for at in cfg.after:
        await asyncio.sleep(max(0.0, left + at - time.monotonic()))
        after.append(samples.take())
    return list(readers), after, opening


async def bench(cfg: Config) -> int:
    pid = cfg.pid or find_worker(cfg.workers[-1]).pid
    log_path = cfg.log or (None if cfg.pid else find_worker(cfg.workers[-1]).log)
    samples = Samples(pid)
    load_start = load()
    print(f"load average at the start: {' / '.join(map(str, load_start))}; worker pid {pid}", flush=True)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth_headers()) as session:
        await check_health(session, cfg.workers)
        sampler = asyncio.create_task(sample_forever(samples))
        topic = await create_topic(session, cfg.workers[0], f"mem-{secrets.token_hex(3)}")
        keys: list[tuple[str, str]] = []
        try:
            fill_s = await fill(session, cfg, topic)
            print(f"filled {cfg.records} records in {fill_s:.1f} s", flush=True)
            keys = await reader_keys(session, cfg, topic)
            await asyncio.sleep(cfg.settle)
            samples.phase = "baseline"
            await asyncio.sleep(BASELINE_S)
            metrics_before = await metrics_text(session, cfg.workers[-1])
            log_offset = log_size(log_path)
            readers, after, opening = await read_and_leave(session, cfg, topic, keys, samples)
            metrics_after = await metrics_text(session, cfg.workers[-1])
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            await revoke(session, cfg.workers[0], keys)
            await delete_topic(session, cfg.workers[0], topic)
    memory = judge(statistics.median(samples.of("baseline")), max(samples.of("reading")), after, cfg.readers)
    five_hundreds = {"route": SUBSCRIBE_ROUTE, "status": "500"}
    disconnect = Disconnect(
        errors_500=round(
            metric(metrics_after, "agentbus_http_requests_total", five_hundreds)
            - metric(metrics_before, "agentbus_http_requests_total", five_hundreds)
        ),
        log_errors=log_errors(log_since(log_path, log_offset)),
        sse_clients_before=metric(metrics_before, "agentbus_sse_clients"),
        sse_clients_after=metric(metrics_after, "agentbus_sse_clients"),
    )
    problems = reader_problems(readers) + disconnect_problems(disconnect, log_path)
    results = report(cfg, memory, disconnect, readers, fill_s, opening, samples, load_start)
    print_table(cfg, results)
    if cfg.json_out:
        write_json(cfg.json_out, cfg, results)
    return exit_status(problems, "readers failed, or the disconnect left errors or streams behind")


def disconnect_problems(d: Disconnect, log_path: str | None) -> list[str]:
    problems = []
    if d.errors_500:
        problems.append(f"{d.errors_500} subscribe requests answered 500")
    if d.log_errors:
        problems.append(f"{len(d.log_errors)} error lines in {log_path}, the first ones:")
        problems += [f"  {line[:200]}" for line in d.log_errors[:MAX_SHOWN]]
    if d.sse_clients_after != d.sse_clients_before:
        problems.append(
            f"agentbus_sse_clients is {d.sse_clients_after:.0f} after the readers left, "
            f"{d.sse_clients_before:.0f} before they came"
        )
    return problems


def report(
    cfg: Config,
    memory: Memory,
    disconnect: Disconnect,
    readers: list[Reader],
    fill_s: float,
    opening: float,
    samples: Samples,
    load_start: LoadAverage,
) -> dict[str, Any]:
    received = [r.received for r in readers if r.status == 200]
    return {
        "memory": asdict(memory),
        "disconnect": asdict(disconnect),
        "readers_open": len(received),
        "received_kib_median": round(statistics.median(received) / 1024, 1) if received else None,
        "fill_s": round(fill_s, 1),
        "opening_s": round(opening, 1),
        "load_start": load_start,
        "load_end": load(),
        "limits": {
            "per_reader_max_mib": PER_READER_MAX_MIB,
            "returned_share": RETURNED_SHARE,
            "returned_slack_mib": RETURNED_SLACK_MIB,
        },
        "rss_kib": [[t, kib, phase] for t, kib, phase in samples.rows],
    }


def print_table(cfg: Config, results: dict[str, Any]) -> None:
    m, d = results["memory"], results["disconnect"]
    rows = [("baseline", m["baseline_mib"]), (f"peak, {cfg.readers} readers", m["peak_mib"])]
    rows += [
        (f"{at:g} s after the disconnect", mib) for at, mib in zip(cfg.after, m["after_mib"], strict=True)
    ]
    print(f"\n{'RSS of the reading worker':<32}{'MiB':>9}{'vs baseline':>13}")
    print("-" * 54)
    for name, mib in rows:
        print(f"{name:<32}{mib:>9.1f}{mib - m['baseline_mib']:>+13.1f}")
    print(
        f"\nper reader: {m['per_reader_mib']:.2f} MiB (bound {PER_READER_MAX_MIB} MiB): "
        f"{'met' if m['bounded'] else 'NOT MET'}"
    )
    print(
        f"returned: {m['after_mib'][-1]:.1f} MiB after {cfg.after[-1]:g} s, allowed "
        f"{m['baseline_mib'] * (1 + RETURNED_SHARE) + RETURNED_SLACK_MIB:.1f} "
        f"(baseline + {RETURNED_SHARE:.0%} + {RETURNED_SLACK_MIB:g} MiB): "
        f"{'met' if m['returned'] else 'NOT MET'}"
    )
    print(
        f"readers: {results['readers_open']} of {cfg.readers} open, each read a median of "
        f"{results['received_kib_median']} KiB at {cfg.read_rate} B/s"
    )
    print(
        f"disconnect: {d['errors_500']} answers of 500, {len(d['log_errors'])} error lines in the log, "
        f"SSE clients {d['sse_clients_before']:.0f} before, {d['sse_clients_after']:.0f} after"
    )
    print(f"load average at the end: {' / '.join(map(str, results['load_end']))}")


def write_json(path: str, cfg: Config, results: dict[str, Any]) -> None:
    config = {k: v for k, v in asdict(cfg).items() if k not in ("json_out", "pid", "log")}
    with open(path, "w") as f:
        json.dump({"config": config, "results": results}, f, indent=2)
        f.write("\n")


# --- inputs ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_fleet_options(p)
    p.add_argument("--records", type=int, default=200_000, help="the backlog")
    p.add_argument("--payload-bytes", type=int, default=1000)
    p.add_argument("--readers", type=int, default=100)
    p.add_argument("--read-rate", type=int, default=32 * 1024, help="bytes/s each reader reads")
    p.add_argument("--hold", type=float, default=30.0, help="seconds the readers read once all are open")
    p.add_argument("--after", default="10,30", help="seconds after the disconnect to read the RSS at")
    p.add_argument("--settle", type=float, default=5.0, help="seconds between the fill and the baseline")
    p.add_argument("--per-key", type=int, default=50, help="readers per API key (the worker allows 64)")
    p.add_argument("--pid", type=int, help="the reading worker's pid (default: found by its web port)")
    p.add_argument("--log", help="the reading worker's log (default: its stdout, when that is a file)")
    a = p.parse_args(argv)
    workers = worker_urls(a.workers)
    if not workers:
        p.error("--workers needs at least one URL")
    try:
        after = sorted(float(s) for s in a.after.split(",") if s.strip())
    except ValueError:
        p.error("--after is a comma-separated list of seconds")
    if a.records < 1 or a.readers < 1 or a.read_rate < 1 or a.per_key < 1 or a.payload_bytes < 16:
        p.error("--records, --readers, --read-rate and --per-key must be >= 1, --payload-bytes >= 16")
    if not after or min(after) < 0 or a.hold <= 0 or a.settle < 0:
        p.error("--after needs one time at least, none negative; --hold > 0, --settle >= 0")
    return Config(
        workers,
        a.bootstrap,
        a.records,
        a.payload_bytes,
        a.readers,
        a.read_rate,
        a.hold,
        after,
        a.settle,
        a.per_key,
        a.pid,
        a.log,
        a.json_out,
    )


def main(argv: list[str] | None = None) -> int:
    return run_bench(bench(parse_args(argv)), (BenchError, KafkaError, TimeoutError, aiohttp.ClientError))


if __name__ == "__main__":
    sys.exit(main())
