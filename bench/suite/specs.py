"""The benches scripts/bench runs and the targets it judges them by: the one place to edit.

To add a bench: write bench/NAME.py taking --workers, --bootstrap (and --prefix if it
needs the fleet's topic prefix) and --json-out FILE; add a BenchSpec to SPECS with its
full and quick sizes; point its Target rows (bench=..., judge=...) at it. A target whose
bench is None is shown as "not measured yet".

The targets are issue 16's, but for the SSE readers' memory: the reliability issue's. A
ratio is the path's figure over its baseline's, both measured in the same run against the
same broker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from suite.summary import Figure, Judge, Results, ResultsError, Target

# --- the targets' numbers -----------------------------------------------------------

SINGLE_RATIO = 0.7  # single publish over raw aiokafka
SINGLE_P50_EXTRA_MS = 2.0  # single publish p50 at most this much over raw's
BATCH_RATIO = 0.9  # batch publish over raw-batch
BOUND_RATIO = 0.9  # a bound topic over an unbound one, same payload
AUTO_RATIO = 0.6  # subscription with auto ack over a raw consumer
ACKED_RATE = 40_000.0  # manual ack or pull, msgs/s through the owner
ACK_P99_MS = 50.0  # one ack request, p99 (strictly under)
APPEND_RATIO = 0.6  # appends to 16 conversations over raw keyed produce
APPEND_ONE_RATE = 2_000.0  # appends/s to one conversation
STREAM_P99_RATIO = 1.5  # token stream p99 over raw's, at every rate raw sustains
SUSTAINED = 0.95  # raw sustains a rate when it delivers this share of it (bench/streams.py's REACHED)
SSE_P50_EXTRA_MS = 1.0  # publish → SSE reader p50 at most this much over raw's, at each rate
SSE_P99_RATIO = 1.2  # publish → SSE reader p99 over raw's, at each rate
SSE_RATES = [1000, 2500]  # offered records/s
SSE_READER_MIB = 2.0  # slow SSE readers of a backlog: what one may add to its worker's RSS
SSE_RETURNED_SHARE = 0.2  # ... and 30 s after they left, the RSS within this share of the baseline
SSE_RETURNED_SLACK_MIB = 16.0  # ... plus this
SSE_READERS = 100
SSE_BACKLOG = 200_000  # records of 1 KB
RESTART_S = 30.0  # a restarted worker serves again in under this, warm and cold
RESTART_KEYS = 1_000_000  # keys in the tables of the fleet
# The standing work the performance issue steps through (bench/growth.py's full sizes).
GROWTH_STEPS = {
    "topics": [1, 10, 100, 1_000],
    "conversations": [10, 100, 1_000, 10_000, 100_000],
    "agents": [10, 100, 1_000, 10_000],
    "readers": [1, 10, 100, 1_000],
}


@dataclass(frozen=True)
class BenchSpec:
    """One bench: `python bench/SCRIPT --workers ... --bootstrap ... [--prefix ...]
    SIZES --json-out FILE`, killed after `timeout_s`."""

    name: str
    script: str  # in bench/
    sizes: tuple[str, ...]  # a full run: the targets' conditions (~50 minutes; recovery ~17, growth ~15)
    quick: tuple[str, ...]  # a smoke check: seconds, figures meaningless
    takes_prefix: bool = False  # it reads the fleet's internal topics, named after AGENTBUS_PREFIX
    timeout_s: float = 600.0


STREAMS_QUICK = ("--seconds", "1", "--settle", "0.2")

SPECS: tuple[BenchSpec, ...] = (
    BenchSpec(
        # First: the other benches leave freed memory in the workers' heaps, which the
        # readers would reuse, and the figure would read lower than on a fresh worker.
        "sse-memory",
        "sse_memory.py",
        sizes=("--records", str(SSE_BACKLOG), "--readers", str(SSE_READERS)),
        quick=("--records", "2000", "--readers", "4", "--hold", "3", "--after", "1,2", "--settle", "1"),
        timeout_s=600,
    ),
    BenchSpec(
        "publish",
        "publish.py",
        sizes=("--records", "20000", "--concurrency", "32", "--batch-size", "100"),
        quick=("--records", "200", "--concurrency", "4", "--batch-size", "10"),
        timeout_s=300,
    ),
    BenchSpec(
        "schemas",
        "schemas.py",
        sizes=("--records", "20000", "--concurrency", "32", "--batch-size", "100"),
        quick=("--records", "200", "--concurrency", "4", "--batch-size", "10"),
        timeout_s=300,
    ),
    BenchSpec(
        "subscribe",
        "subscribe.py",
        sizes=("--records", "20000", "--via", "owner"),
        quick=("--records", "1000", "--via", "owner"),  # its smallest
        timeout_s=600,
    ),
    BenchSpec(
        "conversations",
        "conversations.py",
        sizes=("--records", "2000", "--concurrency", "16"),
        quick=("--records", "40", "--concurrency", "4"),
        takes_prefix=True,
        timeout_s=300,
    ),
    BenchSpec(
        "streams-1",
        "streams.py",
        sizes=("--transport", "ws", "--streams", "100", "--batch", "1", "--rate", "1000,2000,4000"),
        quick=("--transport", "ws", "--streams", "4", "--batch", "1", "--rate", "40", *STREAMS_QUICK),
        takes_prefix=True,
        timeout_s=600,
    ),
    BenchSpec(
        "streams-10",
        "streams.py",
        sizes=("--transport", "ws", "--streams", "100", "--batch", "10", "--rate", "1000,4000,10000"),
        quick=("--transport", "ws", "--streams", "4", "--batch", "10", "--rate", "80", *STREAMS_QUICK),
        takes_prefix=True,
        timeout_s=600,
    ),
    BenchSpec(
        "sse-latency",
        "sse_latency.py",
        sizes=("--rates", ",".join(map(str, SSE_RATES)), "--seconds", "10"),
        quick=("--rates", "100,250", "--seconds", "2"),
        timeout_s=300,
    ),
    BenchSpec(
        "agents",
        "agents.py",
        sizes=("--agents", "1000", "--beats", "10000", "--concurrency", "32"),
        quick=("--agents", "10", "--beats", "100", "--concurrency", "4"),
        takes_prefix=True,
        timeout_s=300,
    ),
    BenchSpec(
        "growth",
        "growth.py",
        # Readers up to 500: two workers hold 256 SSE streams each unless AGENTBUS_MAX_SSE_CLIENTS
        # says more, so the 1,000 step needs a fleet started with it (docs/benchmarks.md).
        sizes=("--readers", "500"),
        quick=("--quick",),
        takes_prefix=True,  # it seeds conversations through the fleet's conversations log
        timeout_s=3600,  # the setup of 10,000 agents dominates
    ),
    BenchSpec(
        "recovery",
        "recovery.py",
        # Last: it restarts a worker of the fleet and leaves its keys in the tables.
        sizes=("--keys", str(RESTART_KEYS)),
        quick=("--keys", "200", "--timeout", "60"),
        takes_prefix=True,
        timeout_s=2400,  # the fill (applying a million ~13 min), the count of the changelogs, two restarts
    ),
)


# --- reading results ---------------------------------------------------------------------


def mode_of(results: Results, mode: str, key: str = "results") -> Mapping[str, Any]:
    """The row of `mode` in the results' list `key`."""
    rows = results.get(key)
    if not isinstance(rows, list):
        raise ResultsError(f"no {key!r} list")
    for row in rows:
        if isinstance(row, Mapping) and row.get("mode") == mode:
            return row
    raise ResultsError(f"no {mode!r} mode")


def number(row: Mapping[str, Any], name: str) -> float:
    value = row.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ResultsError(f"{row.get('mode')}: no {name}")
    return float(value)


def over(value: float, baseline: float) -> float:
    if baseline <= 0:
        raise ResultsError(f"a baseline of {baseline}")
    return value / baseline


def per_s(value: float) -> str:
    return f"{value:,.0f}/s"


def ms(value: float) -> str:
    return f"{value:,.1f} ms"


# --- judges ------------------------------------------------------------------------------


def single_publish(results: Results) -> Figure:
    raw, bus = mode_of(results, "raw"), mode_of(results, "single")
    ratio = over(number(bus, "msgs_per_s"), number(raw, "msgs_per_s"))
    extra = number(bus, "p50_ms") - number(raw, "p50_ms")
    return Figure(
        measured=f"{per_s(number(bus, 'msgs_per_s'))}, p50 {ms(number(bus, 'p50_ms'))}",
        baseline=f"raw {per_s(number(raw, 'msgs_per_s'))}, p50 {ms(number(raw, 'p50_ms'))}",
        ratio=f"{ratio:.2f}x, p50 {extra:+.1f} ms",
        met=ratio >= SINGLE_RATIO and extra <= SINGLE_P50_EXTRA_MS,
    )


def ratio_figure(path: Mapping[str, Any], base: Mapping[str, Any], field: str, goal: float) -> Figure:
    """`path` over `base` in `field` (a rate), met at `goal` or above."""
    ratio = over(number(path, field), number(base, field))
    return Figure(
        measured=per_s(number(path, field)),
        baseline=f"{base.get('mode')} {per_s(number(base, field))}",
        ratio=f"{ratio:.2f}x",
        met=ratio >= goal,
    )


def batch_publish(results: Results) -> Figure:
    return ratio_figure(mode_of(results, "batch"), mode_of(results, "raw-batch"), "msgs_per_s", BATCH_RATIO)


def bound_topic(payload: str) -> Judge:
    def judge(results: Results) -> Figure:
        bound = mode_of(results, f"bound-{payload}", key="publish")
        unbound = mode_of(results, f"unbound-{payload}", key="publish")
        return ratio_figure(bound, unbound, "msgs_per_s", BOUND_RATIO)

    return judge


def auto_ack(results: Results) -> Figure:
    return ratio_figure(mode_of(results, "auto"), mode_of(results, "raw"), "msgs_per_s", AUTO_RATIO)


def acked(mode: str) -> Judge:
    """Manual ack over SSE, or pull: an absolute rate and the ack's p99."""

    def judge(results: Results) -> Figure:
        row, raw = mode_of(results, mode), mode_of(results, "raw")
        rate, p99 = number(row, "msgs_per_s"), number(row, "ack_p99_ms")
        return Figure(
            measured=f"{per_s(rate)}, ack p99 {ms(p99)}",
            baseline=f"raw {per_s(number(raw, 'msgs_per_s'))}",
            ratio=f"{over(rate, number(raw, 'msgs_per_s')):.2f}x",
            met=rate >= ACKED_RATE and p99 < ACK_P99_MS,
        )

    return judge


def append_many(results: Results) -> Figure:
    return ratio_figure(mode_of(results, "append"), mode_of(results, "raw"), "rate", APPEND_RATIO)


def append_one(results: Results) -> Figure:
    row, raw = mode_of(results, "append-one"), mode_of(results, "raw")
    rate = number(row, "rate")
    return Figure(
        measured=f"{per_s(rate)}, p99 {ms(number(row, 'p99_ms'))}",
        baseline=f"raw {per_s(number(raw, 'rate'))}",
        ratio=f"{over(rate, number(raw, 'rate')):.2f}x",
        met=rate >= APPEND_ONE_RATE,
    )


def replay(results: Results) -> Figure:
    figure = ratio_figure(mode_of(results, "replay"), mode_of(results, "raw-read"), "rate", 0.0)
    return Figure(figure.measured, figure.baseline, figure.ratio)


def heartbeats(results: Results) -> Figure:
    any_worker, owner = mode_of(results, "any"), mode_of(results, "owner")
    return Figure(
        measured=f"{per_s(number(any_worker, 'beats_per_s'))} / {per_s(number(owner, 'beats_per_s'))}, "
        f"p99 {ms(number(any_worker, 'p99_ms'))} / {ms(number(owner, 'p99_ms'))}"
    )


def sse_latency(results: Results) -> Figure:
    """At every offered rate: the bus's p50 within SSE_P50_EXTRA_MS of raw's and its p99 within
    SSE_P99_RATIO of raw's; a record lost or repeated at any rate is not met."""
    rows = results.get("results")
    if not isinstance(rows, list) or not rows:
        raise ResultsError("no 'results' list")
    bus_rows = {r.get("rate"): r for r in rows if isinstance(r, Mapping) and r.get("mode") == "bus"}
    measured, baseline, ratios, notes = [], [], [], []
    met = True
    for raw in (r for r in rows if isinstance(r, Mapping) and r.get("mode") == "raw"):
        rate = number(raw, "rate")
        bus = bus_rows.get(raw.get("rate"))
        if bus is None:
            raise ResultsError(f"no bus mode at {per_s(rate)}")
        extra = number(bus, "p50_ms") - number(raw, "p50_ms")
        ratio = over(number(bus, "p99_ms"), number(raw, "p99_ms"))
        measured.append(
            f"{per_s(rate)}: p50 {ms(number(bus, 'p50_ms'))}, p99 {ms(number(bus, 'p99_ms'))}, "
            f"{per_s(number(bus, 'received_per_s'))} received"
        )
        baseline.append(f"raw p50 {ms(number(raw, 'p50_ms'))}, p99 {ms(number(raw, 'p99_ms'))}")
        ratios.append(f"p50 {extra:+.1f} ms, p99 {ratio:.2f}x")
        for row in (raw, bus):
            if row.get("problems"):
                notes.append(f"{row.get('mode')} lost, repeated or failed records at {per_s(rate)}")
        met = met and extra <= SSE_P50_EXTRA_MS and ratio <= SSE_P99_RATIO and not bus.get("problems")
    if not measured:
        raise ResultsError("no raw mode")
    return Figure("; ".join(measured), "; ".join(baseline), "; ".join(ratios), met, "; ".join(notes))


def sse_memory(results: Results) -> Figure:
    """Slow readers of a backlog: per reader at most SSE_READER_MIB over the baseline, the
    RSS back within SSE_RETURNED_SHARE (+ SSE_RETURNED_SLACK_MIB) of it at the last sample
    after they left; a 500 or a traceback from their disconnect is not met."""
    found = results.get("results")
    if not isinstance(found, Mapping) or not isinstance(found.get("memory"), Mapping):
        raise ResultsError("no 'results' with 'memory'")
    memory, disconnect = found["memory"], found.get("disconnect") or {}
    after = memory.get("after_mib")
    if not isinstance(after, list) or not after:
        raise ResultsError("no RSS after the readers left")
    baseline, per_reader, last = number(memory, "baseline_mib"), number(memory, "per_reader_mib"), after[-1]
    allowed = baseline * (1 + SSE_RETURNED_SHARE) + SSE_RETURNED_SLACK_MIB
    errors = int(disconnect.get("errors_500", 0)) + len(disconnect.get("log_errors", []))
    return Figure(
        measured=f"{per_reader:.2f} MiB a reader (peak {number(memory, 'peak_mib'):.0f} MiB), "
        f"{last:.0f} MiB after they left",
        baseline=f"baseline {baseline:.0f} MiB",
        ratio=f"after: {last / baseline:.2f}x",
        met=per_reader <= SSE_READER_MIB and last <= allowed and not errors,
        note=f"{errors} answers of 500 or error lines from the disconnect" if errors else "",
    )


def restart(results: Results) -> Figure:
    """Warm and cold restarts both serving again in under RESTART_S; with fewer keys in the
    tables than the target's (a --quick run), the note gives the count."""
    warm, cold = mode_of(results, "warm"), mode_of(results, "cold")
    keys = number(results, "keys_in_tables")
    notes = []
    if keys < RESTART_KEYS:
        notes.append(f"{keys:,.0f} keys in the tables, not {RESTART_KEYS:,}")
    failed = bool(warm.get("problems") or cold.get("problems"))
    if failed:
        notes.append("keys unanswered or a restart failed")
    serving = number(warm, "serving_s"), number(cold, "serving_s")
    return Figure(
        measured=f"warm {serving[0]:.1f} s, cold {serving[1]:.1f} s "
        f"(ready {number(warm, 'ready_s'):.1f} / {number(cold, 'ready_s'):.1f} s), {keys:,.0f} keys",
        met=max(serving) < RESTART_S and not failed,
        note="; ".join(notes),
    )


def stream_p99(results: Results) -> Figure:
    """p99 against raw's p99, at every offered rate raw sustained; the others are noted."""
    rows = results.get("results")
    if not isinstance(rows, list) or not rows:
        raise ResultsError("no 'results' list")
    bus_rows = {(r["rate"], r["batch"]): r for r in rows if str(r.get("mode", "")).startswith("bus")}
    measured, baseline, ratios, notes = [], [], [], []
    met = True
    for raw in (r for r in rows if r.get("mode") == "raw"):
        rate = number(raw, "rate")
        bus = bus_rows.get((raw["rate"], raw["batch"]))
        if bus is None:
            raise ResultsError(f"no bus mode at {per_s(rate)}")
        if raw.get("problems") or number(raw, "reached") < SUSTAINED:
            notes.append(f"raw did not sustain {per_s(rate)} (reached {number(raw, 'reached'):.2f})")
            continue
        ratio = over(number(bus, "p99_ms"), number(raw, "p99_ms"))
        measured.append(f"p99 {ms(number(bus, 'p99_ms'))} at {per_s(rate)}")
        baseline.append(ms(number(raw, "p99_ms")))
        ratios.append(f"{ratio:.1f}x")
        if bus.get("problems"):
            notes.append(f"chunks lost, repeated or out of order at {per_s(rate)}")
            met = False
        met = met and ratio <= STREAM_P99_RATIO
    if not measured:
        return Figure("", note="; ".join(notes) or "no rate measured")
    return Figure("; ".join(measured), "raw " + "; ".join(baseline), "; ".join(ratios), met, "; ".join(notes))


GROWN = (  # figure, label, unit, decimals: what a growth row shows of each dimension
    ("cpu_us_per_record", "CPU/record", "µs", 0),
    ("p99_ms", "p99", "ms", 1),
    ("rss_mb", "RSS", "MB", 0),
)


def cost_growth(dimension: str) -> Judge:
    """A dimension's first and last step of bench/growth.py and the growth between them:
    CPU per probe record, the probe's p99 and the workers' RSS. Nothing to meet: measured."""

    def judge(results: Results) -> Figure:
        rows = results.get("dimensions")
        if not isinstance(rows, list):
            raise ResultsError("no 'dimensions' list")
        found = [r for r in rows if isinstance(r, Mapping) and r.get("dimension") == dimension]
        steps = found[0].get("steps") if found else None
        if not isinstance(steps, list) or not steps:
            raise ResultsError(f"no {dimension!r} steps")
        first, last, grown = steps[0], steps[-1], found[0].get("growth") or {}
        figures = []
        for name, label, unit, decimals in GROWN:
            factor = grown.get(name)
            change = f"x{factor:.2f}" if isinstance(factor, int | float) else "no ratio"
            a, b = number(first, name), number(last, name)
            figures.append(f"{label} {a:,.{decimals}f} → {b:,.{decimals}f} {unit} ({change})")
        amounts = f"{number(first, 'amount'):,.0f} → {number(last, 'amount'):,.0f} {dimension}"
        verdict = found[0].get("verdict")
        return Figure(f"{amounts}: {', '.join(figures)}", note="" if verdict == "measured" else str(verdict))

    return judge


TARGETS: tuple[Target, ...] = (
    Target(
        "single publish (32 clients, one record per request) vs raw aiokafka",
        f"≥ {SINGLE_RATIO}x, p50 within {SINGLE_P50_EXTRA_MS:.0f} ms of raw",
        "publish",
        single_publish,
        {"concurrency": 32},
    ),
    Target(
        "batch publish (100 records per request) vs raw-batch",
        f"≥ {BATCH_RATIO}x",
        "publish",
        batch_publish,
        {"concurrency": 32, "batch_size": 100},
    ),
    Target("bound topic vs unbound, small schema", f"≥ {BOUND_RATIO}x", "schemas", bound_topic("small")),
    Target("bound topic vs unbound, large schema", f"≥ {BOUND_RATIO}x", "schemas", bound_topic("large")),
    Target(
        "subscription, auto ack (SSE) vs raw consumer",
        f"≥ {AUTO_RATIO}x",
        "subscribe",
        auto_ack,
        {"via": "owner"},
    ),
    Target(
        "subscription, manual ack over SSE (per owner)",
        f"≥ {ACKED_RATE:,.0f}/s, ack p99 < {ACK_P99_MS:.0f} ms",
        "subscribe",
        acked("manual"),
        {"via": "owner"},
    ),
    Target(
        "subscription, pull and ack (per owner)",
        f"≥ {ACKED_RATE:,.0f}/s, ack p99 < {ACK_P99_MS:.0f} ms",
        "subscribe",
        acked("pull"),
        {"via": "owner"},
    ),
    Target(
        "conversation append, 16 conversations vs raw keyed produce",
        f"≥ {APPEND_RATIO}x",
        "conversations",
        append_many,
        {"concurrency": 16},
    ),
    Target(
        "conversation append, one conversation (16 clients)",
        f"≥ {APPEND_ONE_RATE:,.0f}/s",
        "conversations",
        append_one,
        {"concurrency": 16},
    ),
    Target(
        "token streams, 100 streams, one chunk per frame (WebSocket)",
        f"p99 ≤ {STREAM_P99_RATIO}x raw's at every rate raw sustains",
        "streams-1",
        stream_p99,
        {"streams": 100, "transport": "ws"},
    ),
    Target(
        "token streams, 100 streams, 10 chunks per frame (WebSocket)",
        f"p99 ≤ {STREAM_P99_RATIO}x raw's",
        "streams-10",
        stream_p99,
        {"streams": 100, "transport": "ws"},
    ),
    Target(
        "publish → SSE reader on the other worker, at 1k/s and 2.5k/s",
        f"p50 ≤ raw + {SSE_P50_EXTRA_MS:.0f} ms, p99 ≤ {SSE_P99_RATIO}x raw",
        "sse-latency",
        sse_latency,
        {"rates": SSE_RATES},
    ),
    Target(
        f"{SSE_READERS} slow SSE readers of a {SSE_BACKLOG:,}-record backlog on one worker: RSS",
        f"≤ {SSE_READER_MIB:.0f} MiB a reader; after they leave, within {SSE_RETURNED_SHARE:.0%} "
        f"+ {SSE_RETURNED_SLACK_MIB:.0f} MiB of the baseline; no 500s",
        "sse-memory",
        sse_memory,
        {"readers": SSE_READERS, "records": SSE_BACKLOG},
    ),
    Target(
        "worker restart with 1M keys in its tables",
        f"serving again < {RESTART_S:.0f} s",
        "recovery",
        restart,
        {"created_keys": RESTART_KEYS},
    ),
    Target("conversation replay vs raw read of its partition", "none set", "conversations", replay),
    *(
        Target(
            f"cost growth with {dimension} (fixed probe), first → last step",
            "none set",
            "growth",
            cost_growth(dimension),
            {dimension: steps},
        )
        for dimension, steps in GROWTH_STEPS.items()
    ),
    Target(
        "heartbeats (1,000 agents, 32 clients): any worker / the owner",
        "none set",
        "agents",
        heartbeats,
        {"agents": 1000, "concurrency": 32},
    ),
)
