"""Worker restart: how long a worker with many keys in its tables takes to serve again.

1. Fill: --keys conversations, seeded through the conversations log (bench/seed.py: one
   template created through the API, its `created` record read back, one record per
   conversation derived from it and produced straight to `PREFIX-conversations`; then
   waited for until the fleet's processors applied them all). Each is one key of the
   conversations table, a RocksDB table changelogged to Kafka, written by the workers'
   own processor as for `POST /v1/conversations`. The API would take about an hour for a
   million (a few hundred creates/s on 2 shared cores, no batch endpoint); the log takes
   them at tens of thousands a second and the processors apply a few thousand a second.
2. Count the keys actually in the tables: every changelog of the fleet (topics
   `PREFIX-*-changelog`, read to their end), keys whose last value is not a tombstone,
   without the bus's internal markers (keys beginning with NUL).
3. Sample 64 of the keys and ask the worker to restart (the last of --workers) for
   each: X-Agentbus-Worker names the owner.
4. Warm restart: SIGTERM to that worker's process (found by its --web-port; it must be
   this user's), wait for it to exit (its data dir is kept), and start it again with
   the same command line, environment, working directory and log. Timed from the
   start: until its /readyz answers 200, then until it answers a GET of a sampled key
   itself (200, X-Agentbus-Worker naming it: a key it owns), polled every 0.1 s (8 of
   the keys at a time, in turn).
5. Cold restart: the same, with its data dir (AGENTBUS_DATA_DIR) wiped before the start:
   it recovers its tables from the changelogs.

After each restart every sampled key must answer 200 (from its owner, whichever worker
that now is) or the run fails (exit status 1). The restarted process replaces the old
one in scripts/fleet's pid file (beside its data dir), so `scripts/fleet down` stops it.
The conversations stay in the fleet (a fleet of scripts/bench is deleted with its broker).

Target (issue 16): serving again < 30 s, warm and cold.

Needs a running broker and fleet: `scripts/kafka up && scripts/fleet up --workers 2`.

    python bench/recovery.py [--workers URL,URL] [--bootstrap HOST:PORT] [--prefix P]
        [--keys N] [--timeout S] [--no-cold]
        [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from options import add_fleet_options, worker_urls

# bench/publish.py and bench/suite: found next to this file when run as a script.
from publish import BenchError, auth_headers, check_health, exit_status, run_bench
from seed import Seeded, Seeder, conversation_path
from suite.machine import workers_on

WORKER_HEADER = "X-Agentbus-Worker"
TARGET_S = 30.0  # issue 16: serving again in under this
REQUEST_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 2.0  # one /readyz or GET while the worker starts
POLL_S = 0.1
STOP_TIMEOUT_S = 60.0  # then SIGKILL, as scripts/fleet does after 30 s
SAMPLE = 64
PROBE = 8  # sampled keys asked per poll while waiting for the worker to serve one of its own
PROGRESS_S = 10.0
MARKER = (b"\x00", b'"\\u0000')  # the bus's internal table keys, raw or JSON-encoded
MAX_ERRORS_SHOWN = 5

LoadAverage = tuple[float, float, float]


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    prefix: str
    keys: int
    timeout: float
    cold: bool
    json_out: str | None


@dataclass(frozen=True)
class Worker:
    """A running worker process, as it was started: enough to start it again."""

    pid: int
    url: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log: str | None  # where its stdout went (scripts/fleet: worker-PORT.log)

    @property
    def data_dir(self) -> Path | None:
        found = self.env.get("AGENTBUS_DATA_DIR")
        return Path(self.cwd, found) if found else None


@dataclass(frozen=True)
class Restart:
    mode: str  # warm (data dir kept) or cold (wiped)
    stop_s: float  # SIGTERM until the process exited
    ready_s: float  # start until /readyz answered 200
    serving_s: float  # start until it answered a key it owns
    answered: int  # sampled keys answering 200 afterwards (of `sampled`)
    sampled: int
    load: LoadAverage  # os.getloadavg() once it served
    problems: list[str]


# --- inputs -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_fleet_options(p, workers="comma-separated worker base URLs; the last is restarted", prefix=True)
    p.add_argument("--keys", type=int, default=1_000_000, help="conversations to seed")
    p.add_argument("--timeout", type=float, default=300.0, help="give up on one restart after this long")
    p.add_argument("--no-cold", action="store_true", help="skip the restart with a wiped data dir")
    a = p.parse_args(argv)
    workers = worker_urls(a.workers)
    if len(workers) < 2:
        p.error("--workers needs two URLs at least: the fleet must serve while one restarts")
    if a.keys < SAMPLE or a.timeout <= 0:
        p.error(f"--keys must be >= {SAMPLE}, --timeout > 0")
    return Config(workers, a.bootstrap, a.prefix, a.keys, a.timeout, not a.no_cold, a.json_out)


def load() -> LoadAverage:
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def loads(value: LoadAverage) -> str:
    return " / ".join(f"{x:.2f}" for x in value)


def port_of(url: str) -> str:
    return url.rstrip("/").rsplit(":", 1)[-1]


# --- 2. count ---------------------------------------------------------------------------


async def keys_in_tables(cfg: Config) -> dict[str, int]:
    """Live keys per changelog of the fleet (PREFIX-*-changelog), each read to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cfg.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap)
    await consumer.start()
    await admin.start()
    try:
        names = sorted(t for t in await consumer.topics() if is_changelog(t, cfg.prefix))
        counts = {}
        for described in await admin.describe_topics(names):
            name, count = described["topic"], len(described["partitions"])
            counts[name] = await live_keys(consumer, [TopicPartition(name, p) for p in range(count)])
        return dict(sorted(counts.items()))
    finally:
        await admin.close()
        await consumer.stop()


def is_changelog(topic: str, prefix: str) -> bool:
    return topic.startswith(f"{prefix}-") and topic.endswith("-changelog")


async def live_keys(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> int:
    consumer.assign(partitions)
    firsts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        consumer.seek(tp, firsts[tp])
    live: dict[bytes, bool] = {}
    pending = {tp for tp in partitions if ends[tp] > firsts[tp]}
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=5000)
        for tp, records in batches.items():
            for record in records:
                if record.key is not None and not record.key.startswith(MARKER):
                    live[record.key] = record.value is not None
            if records and records[-1].offset >= ends[tp] - 1:
                pending.discard(tp)
        for tp in list(pending):  # compaction or transaction markers can end a partition early
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    return sum(live.values())


# --- 3.-5. restarts ------------------------------------------------------------------------


def find_worker(url: str) -> Worker:
    """The process serving `url`: a `faust -A bus worker --web-port PORT` of this user's."""
    port = int(port_of(url))
    found = workers_on(port)
    if len(found) != 1:
        raise BenchError(f"{len(found)} bus workers with --web-port {port} on this machine; need exactly one")
    pid = found[0]
    proc = Path(f"/proc/{pid}")
    if proc.stat().st_uid != os.getuid():
        raise BenchError(f"worker pid {pid} on :{port} is another user's; not restarting it")
    argv = proc.joinpath("cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
    env = dict(
        entry.split("=", 1)
        for entry in proc.joinpath("environ").read_bytes().decode().split("\0")
        if "=" in entry
    )
    stdout = os.readlink(proc / "fd" / "1")
    return Worker(pid, url, argv, env, os.readlink(proc / "cwd"), stdout if stdout.startswith("/") else None)


async def stop(worker: Worker) -> float:
    """SIGTERM, and the seconds until the process is gone (SIGKILL after STOP_TIMEOUT_S)."""
    began = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)
    while alive(worker.pid):
        if time.monotonic() - began > STOP_TIMEOUT_S:
            os.kill(worker.pid, signal.SIGKILL)
        await asyncio.sleep(POLL_S)
    return time.monotonic() - began


def alive(pid: int) -> bool:
    """Whether the process runs; a child of this bench (restarted earlier) is reaped once it exits."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not this bench's child
        pass
    else:
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start(worker: Worker) -> Worker:
    """The worker started again as it was; scripts/fleet's pid file then names the new process."""
    log = open(worker.log, "ab") if worker.log else subprocess.DEVNULL
    proc = subprocess.Popen(
        worker.argv,
        cwd=worker.cwd,
        env=worker.env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # outlives this bench, as a worker of scripts/fleet does
    )
    if not isinstance(log, int):
        log.close()
    data_dir = worker.data_dir
    if data_dir is not None:
        pidfile = data_dir.parent / f"worker-{port_of(worker.url)}.pid"
        if pidfile.exists() and pidfile.read_text().strip() == str(worker.pid):
            pidfile.write_text(f"{proc.pid}\n")
    return Worker(proc.pid, worker.url, worker.argv, worker.env, worker.cwd, worker.log)


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    """(status, the worker that answered per X-Agentbus-Worker); (0, "") when unreachable."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)) as resp:
            await resp.read()
            return resp.status, resp.headers.get(WORKER_HEADER, "")
    except (aiohttp.ClientError, TimeoutError):
        return 0, ""


def key_url(worker: str, conversation_id: str) -> str:
    return worker + conversation_path(conversation_id)


async def answered(session: aiohttp.ClientSession, workers: list[str], ids: list[str]) -> Counter[int]:
    """How the sampled keys answer (status -> count; 0: unreachable), each asked of the
    workers in turn."""
    turn = itertools.cycle(workers)
    answers = await asyncio.gather(*(get(session, key_url(next(turn), i)) for i in ids))
    return Counter(status for status, _ in answers)


async def serves_own_key(session: aiohttp.ClientSession, url: str, ids: list[str]) -> bool:
    """Whether `url` answers one of the keys itself (200, X-Agentbus-Worker naming it)."""
    answers = await asyncio.gather(*(get(session, key_url(url, i)) for i in ids))
    return any(status == 200 and port_of(by) == port_of(url) for status, by in answers)


async def restart(session: aiohttp.ClientSession, cfg: Config, mode: str, sample: list[str]) -> Restart:
    """Stop the last worker, wipe its data dir if cold, start it, and time it back to serving."""
    url = cfg.workers[-1]
    worker = find_worker(url)
    stop_s = await stop(worker)
    restarted = None
    try:
        if mode == "cold" and worker.data_dir is not None:
            shutil.rmtree(worker.data_dir, ignore_errors=True)
        began = time.monotonic()
        restarted = start(worker)
        deadline = began + cfg.timeout
        ready_s = serving_s = math.nan
        problems = []
        # A few keys per poll, in turn: the probes must not load the worker they time.
        probes = itertools.cycle(sample[i : i + PROBE] for i in range(0, len(sample), PROBE))
        while time.monotonic() < deadline:
            if not alive(restarted.pid):
                problems.append(f"{mode}: the restarted worker exited; see {worker.log}")
                break
            if math.isnan(ready_s):
                status, _ = await get(session, f"{url}/readyz")
                if status == 200:
                    ready_s = time.monotonic() - began
            elif await serves_own_key(session, url, next(probes)):
                serving_s = time.monotonic() - began
                break
            await asyncio.sleep(POLL_S)
        else:
            problems.append(f"{mode}: not serving a key it owns after {cfg.timeout:.0f} s")
        at_end = load()
        statuses = await answered(session, cfg.workers, sample)
        count = statuses[200]
        if count != len(sample):
            others = ", ".join(
                f"{n} x {status or 'unreachable'}" for status, n in sorted(statuses.items()) if status != 200
            )
            missing = len(sample) - count
            problems.append(f"{mode}: {missing} of {len(sample)} sampled keys do not answer 200 ({others})")
        return Restart(
            mode,
            round(stop_s, 2),
            round(ready_s, 2),
            round(serving_s, 2),
            count,
            len(sample),
            at_end,
            problems,
        )
    finally:
        if restarted is None:  # interrupted between the stop and the start: leave the fleet whole
            start(worker)


# --- output ----------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def report(cfg: Config, filled: Seeded, tables: dict[str, int], restarts: list[Restart]) -> dict[str, Any]:
    keys = sum(tables.values())
    print(f"\nfill: {filled.describe()}")
    print(f"keys in the tables: {keys:,} (" + ", ".join(f"{t}: {n:,}" for t, n in tables.items() if n) + ")")
    header = f"{'restart':<8}{'stop s':>8}{'ready s':>9}{'serving s':>11}{'keys answering':>16}   load 1/5/15"
    print(header)
    print("-" * len(header))
    for r in restarts:
        print(
            f"{r.mode:<8}{r.stop_s:>8.1f}{r.ready_s:>9.1f}{r.serving_s:>11.1f}"
            f"{f'{r.answered}/{r.sampled}':>16}   {loads(r.load)}"
        )
    for r in restarts:
        verdict = "met" if r.serving_s < TARGET_S and not r.problems else "NOT MET"
        print(f"{r.mode}: serving again in {r.serving_s:.1f} s: target (< {TARGET_S:.0f} s) {verdict}")
    config: dict[str, Any] = {k: v for k, v in asdict(cfg).items() if k != "json_out"}
    config["created_keys"] = filled.records  # by this run
    rows = [{**asdict(r), "keys": keys} for r in restarts]
    document = {
        "config": config,
        "fill": filled.as_json(),
        "keys_in_tables": keys,
        "tables": tables,
        "results": rows,
    }
    return {k: jsonable(v) for k, v in document.items()}  # NaN (a restart never ready) as null


def write_json(path: str, results: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
        f.write("\n")


# --- the run --------------------------------------------------------------------------


async def bench(cfg: Config) -> int:
    ids = [f"rec-{secrets.token_hex(3)}-{i}" for i in range(cfg.keys)]
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    print(f"load average at the start: {loads(load())}", flush=True)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth_headers()) as session:
        await check_health(session, cfg.workers)
        find_worker(cfg.workers[-1])  # before the fill: refuse early
        filled = await Seeder(session, cfg.workers[0], cfg.bootstrap, cfg.prefix).create(ids)
        print(f"{filled.describe()}; load {loads(load())}", flush=True)
        tables = await keys_in_tables(cfg)
        print(f"keys in the tables: {sum(tables.values()):,}", flush=True)
        sample = random.sample(ids, SAMPLE)
        restarts = [await restart(session, cfg, "warm", sample)]
        print(f"warm: serving again in {restarts[-1].serving_s:.1f} s, load {loads(load())}", flush=True)
        if cfg.cold:
            restarts.append(await restart(session, cfg, "cold", sample))
            print(f"cold: serving again in {restarts[-1].serving_s:.1f} s, load {loads(load())}", flush=True)
    results = report(cfg, filled, tables, restarts)
    if cfg.json_out:
        write_json(cfg.json_out, results)
    problems = [p for r in restarts for p in r.problems]
    return exit_status(problems, "keys unanswered or a restart failed")


def main(argv: list[str] | None = None) -> int:
    errors = (BenchError, KafkaError, TimeoutError, aiohttp.ClientError, OSError)
    return run_bench(bench(parse_args(argv)), errors)


if __name__ == "__main__":
    sys.exit(main())
