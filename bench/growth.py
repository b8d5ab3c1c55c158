"""Cost growth: how the worker CPU, latency and memory of a fixed probe grow with the standing
work around it, so growth is a line in a table rather than a surprise.

Four dimensions, each stepped up through amounts of standing work (a step adds to what the
steps before made; a dimension removes its work before the next one starts):

  topics         N topics of one partition, each touched with one record when made; the
                 probe publishes to all N in turn.
  conversations  N conversations, seeded through the conversations log (bench/seed.py:
                 records derived from one created through the API, produced straight to
                 PREFIX-conversations and applied by the workers' own processors) and
                 deleted through it at the end; the probe appends to them in turn (to as
                 many as it sends records, chosen at random; those that never had a
                 message get one through the API first, and the step waits for the
                 workers to go quiet after the seeding: see Conversations and until_quiet).
  agents         N agents registered with heartbeat interval I, each beaten once per I by
                 the bench (N/I beats/s); the probe publishes to a topic of its own.
  readers        N open SSE readers (from=earliest) of a topic getting --reader-rate
                 records/s, spread over the workers, under tenant keys of their own (a key
                 holds 64 streams per worker at most); the probe publishes to its own topic.

At each step, once its work is in place and --settle seconds have passed: an idle window
(--idle-seconds: the standing work alone), then the probe: --rate records/s for --seconds,
paced open-loop as bench/sse_latency.py paces (a late slot is sent late, never skipped), up
to 32 requests in flight, over the workers in turn. From /proc/PID/stat of every worker
(utime + stime of all its threads, and rss):

  cpu µs/rec   the workers' CPU over the probe window / probe records answered
  marginal     the same less the idle window's CPU rate over the probe window: the probe's own
  idle cores   the workers' CPU per second in the idle window: the standing work's own cost
  p50, p99     of one probe request
  RSS          the workers' resident memory at the end of the step

The headline is each figure's growth from the first step to the last (last / first).

Checks, each failing the run (exit status 1): every setup and probe request answered as
expected; topics: each topic's Kafka end offsets equal the records the bus accepted for
it; conversations: each conversation appended to got sequence numbers 1..n, each once;
agents: every beat accepted (202), the beats reached 90% of N/I over the windows, and a
sample of the agents beaten show their beat in last_heartbeat_at; readers: every reader
still open and holding every trickle record accepted so far, once.

Worker pids: --pids, else the pid files worker-PORT.pid in --fleet-dir (default
$AGENTBUS_FLEET_DIR), else the bus workers serving each worker URL's port. More readers
than 2 x 250 need AGENTBUS_MAX_SSE_CLIENTS raised on the workers (256 by default).

Needs a running broker and fleet: `scripts/kafka up && scripts/fleet up --workers 2`.

    python bench/growth.py [--workers URL,URL] [--bootstrap HOST:PORT] [--prefix P] [--quick]
        [--dimensions topics,conversations,agents,readers] [--topics N | N,N,...]
        [--conversations ...] [--agents ...] [--readers ...] [--rate R] [--seconds S]
        [--idle-seconds S] [--settle S] [--heartbeat-interval-ms I] [--reader-rate R]
        [--setup-concurrency C] [--pids PID,PID] [--fleet-dir DIR] [--json-out FILE]
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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiokafka.errors import KafkaError

# bench/publish.py and the others: found next to this file when run as a script.
from growth_work import Agents, Bus, Conversations, Readers, Send, Topics, Work
from options import add_fleet_options, worker_urls
from publish import BenchError, auth_headers, check_health, exit_status, percentile, run_bench
from seed import Seeder
from sse_latency import Tally, jsonable, paced
from suite.machine import workers_on

DIMENSIONS = ("topics", "conversations", "agents", "readers")
FIRST = {"topics": 1, "conversations": 10, "agents": 10, "readers": 1}
LARGEST = {"topics": 1_000, "conversations": 100_000, "agents": 10_000, "readers": 1_000}
QUICK_LARGEST = {"topics": 10, "conversations": 100, "agents": 100, "readers": 10}
# rate, seconds, idle_seconds, settle: full, then --quick
TIMING = {"rate": (200.0, 50.0), "seconds": (10.0, 2.0), "idle_seconds": (5.0, 1.0), "settle": (2.0, 0.5)}
PROBE_IN_FLIGHT = 32
SETUP_TIMEOUT_S = 30.0  # one setup or cleanup request (a probe request: sse_latency's 10 s)
QUIET_CORES = 0.2  # the workers' CPU under which a seeded step's background work is done
QUIET_SAMPLE_S = 5.0
QUIET_WAIT_S = 300.0
GROWN = ("cpu_us_per_record", "marginal_us_per_record", "idle_cores", "p50_ms", "p99_ms", "rss_mb")


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    prefix: str
    dimensions: tuple[str, ...]
    topics: list[int]
    conversations: list[int]
    agents: list[int]
    readers: list[int]
    rate: float
    seconds: float
    idle_seconds: float
    settle: float
    heartbeat_interval_ms: int
    reader_rate: float
    setup_concurrency: int
    pids: list[int] | None
    fleet_dir: str | None
    quick: bool
    json_out: str | None

    def steps(self, dimension: str) -> list[int]:
        steps: list[int] = getattr(self, dimension)
        return steps

    @property
    def probe_records(self) -> int:
        return max(1, round(self.rate * self.seconds))


# --- inputs ---------------------------------------------------------------------------------


def steps_of(text: str, first: int) -> list[int]:
    """`N`: first, 10 x first, ... below N, then N. `A,B,C`: those, which must rise."""
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise ValueError("steps are whole numbers >= 1")
    if len(values) > 1:
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ValueError(f"steps must rise: {text}")
        return values
    steps, step = [], first
    while step < values[0]:
        steps.append(step)
        step *= 10
    return [*steps, values[0]]


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_fleet_options(p, prefix=True)
    p.add_argument("--quick", action="store_true", help="small steps and short windows: under a minute")
    p.add_argument("--dimensions", default=",".join(DIMENSIONS), help="comma-separated, in this order")
    for name in DIMENSIONS:
        p.add_argument(
            f"--{name}",
            help=f"the largest step (decades from {FIRST[name]} up to it) or the steps, comma-separated "
            f"(default {LARGEST[name]}, --quick {QUICK_LARGEST[name]})",
        )
    p.add_argument("--rate", type=float, help="probe records/s (default 200, --quick 50)")
    p.add_argument("--seconds", type=float, help="probe window per step (default 10, --quick 2)")
    p.add_argument("--idle-seconds", type=float, help="idle window per step (default 5, --quick 1)")
    p.add_argument("--settle", type=float, help="wait after a step's setup (default 2, --quick 0.5)")
    p.add_argument("--heartbeat-interval-ms", type=int, default=30_000, help="the agents' interval")
    p.add_argument("--reader-rate", type=float, default=1.0, help="records/s to the readers' topic")
    p.add_argument("--setup-concurrency", type=int, default=32, help="setup requests in flight")
    p.add_argument("--pids", help="comma-separated worker pids (default: found from --workers)")
    p.add_argument(
        "--fleet-dir", default=os.environ.get("AGENTBUS_FLEET_DIR"), help="scripts/fleet's pid files"
    )
    a = p.parse_args(argv)
    workers = worker_urls(a.workers)
    dimensions = tuple(d for d in DIMENSIONS if d in a.dimensions.split(","))
    if not workers or not dimensions or set(a.dimensions.split(",")) - set(DIMENSIONS):
        p.error(f"need --workers, and --dimensions from {','.join(DIMENSIONS)}")
    mode = 1 if a.quick else 0
    timing = {k: getattr(a, k) if getattr(a, k) is not None else v[mode] for k, v in TIMING.items()}
    try:
        steps = {
            d: steps_of(getattr(a, d) or str((QUICK_LARGEST if a.quick else LARGEST)[d]), FIRST[d])
            for d in DIMENSIONS
        }
        pids = [int(x) for x in a.pids.split(",")] if a.pids else None
    except ValueError as exc:
        p.error(str(exc))
    if min(timing.values()) <= 0 or a.reader_rate <= 0 or a.setup_concurrency < 1:
        p.error("--rate, --seconds, --idle-seconds, --settle, --reader-rate must be > 0")
    if not 500 <= a.heartbeat_interval_ms <= 3_600_000:
        p.error("--heartbeat-interval-ms must be 500..3600000, as the bus accepts")
    return Config(
        workers=workers,
        bootstrap=a.bootstrap,
        prefix=a.prefix,
        dimensions=dimensions,
        **steps,
        rate=timing["rate"],
        seconds=timing["seconds"],
        idle_seconds=timing["idle_seconds"],
        settle=timing["settle"],
        heartbeat_interval_ms=a.heartbeat_interval_ms,
        reader_rate=a.reader_rate,
        setup_concurrency=a.setup_concurrency,
        pids=pids,
        fleet_dir=a.fleet_dir,
        quick=a.quick,
        json_out=a.json_out,
    )


# --- the workers' CPU and memory, from /proc ------------------------------------------------


@dataclass(frozen=True)
class Usage:
    cpu_s: float  # user + system time of every thread
    rss_bytes: int


def parse_stat(text: str, ticks_per_s: float, page_bytes: int) -> Usage:
    """A /proc/PID/stat line: utime and stime (fields 14, 15, in clock ticks) and rss (field
    24, in pages). Fields are counted after the command name's last ')': it may hold spaces."""
    fields = text.rpartition(")")[2].split()  # fields[0] is field 3, the state
    utime, stime, rss = int(fields[11]), int(fields[12]), int(fields[21])
    return Usage((utime + stime) / ticks_per_s, rss * page_bytes)


def usage_of(pids: Sequence[int]) -> Usage:
    """The workers' usage summed; a worker gone mid-run makes the figures meaningless."""
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    found = []
    for pid in pids:
        try:
            found.append(parse_stat(Path(f"/proc/{pid}/stat").read_text(), ticks, page))
        except (OSError, IndexError, ValueError) as exc:
            raise BenchError(f"worker pid {pid} can no longer be read ({exc}): did it exit?") from exc
    return Usage(sum(u.cpu_s for u in found), sum(u.rss_bytes for u in found))


def worker_pids(cfg: Config) -> list[int]:
    """--pids, else each worker's pid file in the fleet dir, else the worker serving its port."""
    pids = list(cfg.pids or [])
    for url in [] if pids else cfg.workers:
        port = urlsplit(url).port
        pid_file = Path(cfg.fleet_dir or "", f"worker-{port}.pid")
        if cfg.fleet_dir and pid_file.exists():
            pids.append(int(pid_file.read_text().strip()))
            continue
        found = workers_on(port) if port else []
        if len(found) != 1:
            raise BenchError(f"{len(found)} bus workers serve :{port}; give their pids with --pids")
        pids.append(found[0])
    usage_of(pids)  # each one readable, now
    return pids


async def until_quiet(pids: Sequence[int]) -> float:
    """Until the workers' CPU over QUIET_SAMPLE_S is under QUIET_CORES (at most QUIET_WAIT_S,
    then it goes on, saying so); the seconds waited. Records seeded at tens of thousands a
    second leave the workers busy after their views applied them: the standby replicas apply
    the changelog records, RocksDB flushes and compacts."""
    began = time.monotonic()
    while True:
        before = usage_of(pids)
        await asyncio.sleep(QUIET_SAMPLE_S)
        cores = (usage_of(pids).cpu_s - before.cpu_s) / QUIET_SAMPLE_S
        waited = time.monotonic() - began
        if cores < QUIET_CORES:
            return waited
        if waited >= QUIET_WAIT_S:
            print(f"  the workers still use {cores:.2f} cores after {waited:.0f} s: measuring anyway")
            return waited
        print(f"  waiting for the workers to go quiet: {cores:.2f} cores, {waited:.0f} s", flush=True)


# --- one step -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    seconds: float
    cpu_s: float


@dataclass(frozen=True)
class Step:
    amount: int  # of standing work: topics, conversations, agents or readers
    records: int  # probe records answered
    achieved_per_s: float  # of the probe
    cpu_us_per_record: float
    marginal_us_per_record: float
    idle_cores: float
    p50_ms: float
    p99_ms: float
    rss_mb: float
    load_1m: float
    problems: list[str] = field(default_factory=list)


def cost_per_record(idle: Window, probe: Window, records: int) -> tuple[float, float]:
    """(CPU µs per probe record, the same less the idle window's rate): NaN without records."""
    if records < 1:
        return math.nan, math.nan
    idle_rate = idle.cpu_s / idle.seconds if idle.seconds > 0 else 0.0
    return (
        probe.cpu_s / records * 1e6,
        (probe.cpu_s - idle_rate * probe.seconds) / records * 1e6,
    )


def step_of(
    amount: int, idle: Window, probe: Window, latencies: list[float], rss: int, problems: list[str]
) -> Step:
    """A step's figures; `latencies` has one entry per probe record answered."""
    records = len(latencies)
    total, marginal = cost_per_record(idle, probe, records)
    return Step(
        amount=amount,
        records=records,
        achieved_per_s=round(records / probe.seconds, 1) if probe.seconds > 0 else math.nan,
        cpu_us_per_record=round(total, 1),
        marginal_us_per_record=round(marginal, 1),
        idle_cores=round(idle.cpu_s / idle.seconds, 3) if idle.seconds > 0 else math.nan,
        p50_ms=round(percentile(latencies, 50) * 1000, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 2),
        rss_mb=round(rss / 2**20, 1),
        load_1m=round(os.getloadavg()[0], 2),
        problems=problems,
    )


def timed(send: Send, latencies: list[float]) -> Send:
    async def one(index: int) -> None:
        began = time.perf_counter()
        await send(index)
        latencies.append(time.perf_counter() - began)

    return one


async def measure(work: Work, amount: int, cfg: Config, pids: list[int], problems: list[str]) -> Step:
    """The idle window, then the probe window, then the work's own check."""
    await asyncio.sleep(cfg.settle)
    work.mark()
    t0, u0 = time.monotonic(), usage_of(pids)
    await asyncio.sleep(cfg.idle_seconds)
    t1, u1 = time.monotonic(), usage_of(pids)
    tally, latencies = Tally(expected=cfg.probe_records), list[float]()
    await paced(timed(work.probe(), latencies), cfg.rate, cfg.probe_records, PROBE_IN_FLIGHT, tally)
    t2, u2 = time.monotonic(), usage_of(pids)
    problems = problems + [f"a probe request failed: {e}" for e in tally.send_errors[:5]]
    problems += await work.check()
    idle, probe = Window(t1 - t0, u1.cpu_s - u0.cpu_s), Window(t2 - t1, u2.cpu_s - u1.cpu_s)
    return step_of(amount, idle, probe, latencies, u2.rss_bytes, problems)


# --- a dimension ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    dimension: str
    steps: list[Step]
    growth: dict[str, float | None]  # figure -> last step's / first step's
    verdict: str


def ratio(first: float, last: float) -> float | None:
    """last / first; None when there is no ratio (a first figure of 0, or a missing one)."""
    if not first > 0 or math.isnan(last):
        return None
    return round(last / first, 2)


def growth(steps: Sequence[Step]) -> dict[str, float | None]:
    if not steps:
        return dict.fromkeys(GROWN)
    first, last = asdict(steps[0]), asdict(steps[-1])
    return {name: ratio(first[name], last[name]) for name in GROWN}


def verdict(steps: Sequence[Step], planned: Sequence[int]) -> str:
    """ "measured" when every planned step ran and passed its checks; otherwise what failed."""
    failed = [f"{s.amount:,}" for s in steps if s.problems]
    if failed:
        return f"failed at {', '.join(failed)}"
    if len(steps) < len(planned):
        return f"stopped after {len(steps)} of {len(planned)} steps"
    return "measured"


def work_of(dimension: str, bus: Bus, cfg: Config) -> Work:
    makers: dict[str, Callable[[], Work]] = {
        "topics": lambda: Topics(bus, cfg.bootstrap),
        "conversations": lambda: Conversations(
            bus, Seeder(bus.session, bus.workers[0], cfg.bootstrap, cfg.prefix), cfg.probe_records
        ),
        "agents": lambda: Agents(bus, cfg.heartbeat_interval_ms),
        "readers": lambda: Readers(bus, cfg.reader_rate),
    }
    return makers[dimension]()


async def run_dimension(dimension: str, bus: Bus, cfg: Config, pids: list[int]) -> Dimension:
    work = work_of(dimension, bus, cfg)
    steps: list[Step] = []
    print(f"\n{header(dimension)}", flush=True)
    try:
        for amount in cfg.steps(dimension):
            began = time.monotonic()
            problems = await work.grow_to(amount)
            if work.seeded:
                await until_quiet(pids)
            setup_s = time.monotonic() - began
            steps.append(await measure(work, amount, cfg, pids, problems))
            print(row(steps[-1]) + f"   (setup {setup_s:.0f} s)", flush=True)
            for problem in steps[-1].problems:
                print(f"  !!! {problem}", flush=True)
    finally:
        await work.close()
    result = Dimension(dimension, steps, growth(steps), verdict(steps, cfg.steps(dimension)))
    print(headline(result), flush=True)
    return result


# --- output ---------------------------------------------------------------------------------


def header(dimension: str) -> str:
    return (
        f"{dimension:<14}{'cpu µs/rec':>11}{'marginal':>10}{'idle cores':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'RSS MB':>9}{'probe/s':>9}{'load':>7}"
    )


def row(s: Step) -> str:
    return (
        f"{s.amount:>14,}{s.cpu_us_per_record:>11.0f}{s.marginal_us_per_record:>10.0f}{s.idle_cores:>11.3f}"
        f"{s.p50_ms:>9.1f}{s.p99_ms:>9.1f}{s.rss_mb:>9.0f}{s.achieved_per_s:>9.0f}{s.load_1m:>7.2f}"
    )


def times(value: float | None) -> str:
    return "-" if value is None else f"x{value:.2f}"


def headline(d: Dimension) -> str:
    if not d.steps:
        return f"{d.dimension}: no step ran"
    g = d.growth
    return (
        f"growth {d.steps[0].amount:,} → {d.steps[-1].amount:,} {d.dimension}: "
        f"cpu/rec {times(g['cpu_us_per_record'])}, marginal {times(g['marginal_us_per_record'])}, "
        f"idle {times(g['idle_cores'])}, p50 {times(g['p50_ms'])}, p99 {times(g['p99_ms'])}, "
        f"RSS {times(g['rss_mb'])}: {d.verdict}"
    )


def document(cfg: Config, dimensions: list[Dimension]) -> dict[str, Any]:
    config = {k: v for k, v in asdict(cfg).items() if k not in ("json_out", "pids", "fleet_dir")}
    found = []
    for d in dimensions:
        steps = [{k: jsonable(v) for k, v in asdict(s).items()} for s in d.steps]
        found.append({"dimension": d.dimension, "steps": steps, "growth": d.growth, "verdict": d.verdict})
    return {"config": config, "dimensions": found}


# --- the run ----------------------------------------------------------------------------------


async def bench(cfg: Config) -> int:
    pids = worker_pids(cfg)
    print(f"workers {', '.join(cfg.workers)}: pids {', '.join(map(str, pids))}", flush=True)
    timeout = aiohttp.ClientTimeout(total=SETUP_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=PROBE_IN_FLIGHT + 2 * cfg.setup_concurrency + 64)
    results: list[Dimension] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=auth_headers()) as session:
        await check_health(session, cfg.workers)
        bus = Bus(session, cfg.workers, f"grow-{secrets.token_hex(3)}", cfg.setup_concurrency)
        for dimension in cfg.dimensions:
            results.append(await run_dimension(dimension, bus, cfg, pids))
    print()
    for d in results:
        print(headline(d))
    if cfg.json_out:
        await asyncio.to_thread(write_json, cfg.json_out, document(cfg, results))
    problems = [f"{d.dimension} at {s.amount:,}: {p}" for d in results for s in d.steps for p in s.problems]
    return exit_status(problems, "a step's standing work or its probe was not (all) there")


def write_json(path: str, found: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(found, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    return run_bench(bench(parse_args(argv)), (BenchError, KafkaError, TimeoutError, aiohttp.ClientError))


if __name__ == "__main__":
    sys.exit(main())
