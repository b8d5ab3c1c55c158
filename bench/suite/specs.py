"""The benches scripts/bench runs and the targets it judges them by: the one place to edit.

To add a bench: write bench/NAME.py taking --workers, --bootstrap (and --prefix if it
needs the fleet's topic prefix) and --json-out FILE; add a BenchSpec to SPECS with its
full and quick sizes; point its Target rows (bench=..., judge=...) at it. A target whose
bench is None is shown as "not measured yet".

The targets are issue 16's. A ratio is the path's figure over its baseline's, both
measured in the same run against the same broker.
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


@dataclass(frozen=True)
class BenchSpec:
    """One bench: `python bench/SCRIPT --workers ... --bootstrap ... [--prefix ...]
    SIZES --json-out FILE`, killed after `timeout_s`."""

    name: str
    script: str  # in bench/
    sizes: tuple[str, ...]  # a full run: the targets' conditions, within ~15 minutes for all
    quick: tuple[str, ...]  # a smoke check: seconds, figures meaningless
    takes_prefix: bool = False  # it reads the fleet's internal topics, named after AGENTBUS_PREFIX
    timeout_s: float = 600.0


STREAMS_QUICK = ("--seconds", "1", "--settle", "0.2")

SPECS: tuple[BenchSpec, ...] = (
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
        "agents",
        "agents.py",
        sizes=("--agents", "1000", "--beats", "10000", "--concurrency", "32"),
        quick=("--agents", "10", "--beats", "100", "--concurrency", "4"),
        takes_prefix=True,
        timeout_s=300,
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
        "p50 ≤ raw + 1 ms, p99 ≤ 1.2x raw",
    ),
    Target("worker restart with 1M keys in its tables", "serving again < 30 s"),
    Target("conversation replay vs raw read of its partition", "none set", "conversations", replay),
    Target(
        "heartbeats (1,000 agents, 32 clients): any worker / the owner",
        "none set",
        "agents",
        heartbeats,
        {"agents": 1000, "concurrency": 32},
    ),
)
