"""The summary of one scripts/bench run: rows judged against the targets, rendered as
Markdown, and written into docs/benchmarks.md between two marker comments.

Pure: no processes, no network, no clock. A bench's results are the JSON document it
wrote with --json-out; a target's judge turns that document into a Figure. Everything
outside the markers is left byte for byte as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

START = "<!-- summary:start -->"
END = "<!-- summary:end -->"

Results = Mapping[str, Any]  # one bench's --json-out document
LoadAverage = tuple[float, float, float]  # os.getloadavg(): 1, 5 and 15 minutes


class ResultsError(ValueError):
    """A bench's results lack what a judge needs (an older bench, or a failed mode)."""


class MarkerError(ValueError):
    """The document does not hold exactly one START marker followed by one END marker."""


@dataclass(frozen=True)
class Figure:
    """What one target's path measured in one run, and whether that meets the target."""

    measured: str
    baseline: str = ""  # what the path is compared with, measured in the same run
    ratio: str = ""
    met: bool | None = None  # None: nothing to judge (no target, or nothing comparable)
    note: str = ""  # why it was not judged, or what the run did differently


# Turns a bench's results into the figure of one target.
Judge = Callable[[Results], Figure]


@dataclass(frozen=True)
class Target:
    """A row of the summary. `bench` names the spec whose results `judge` reads; None
    means no bench measures this path yet. `conditions` are config values (of the
    results' "config") the target assumes: a run with others says so in its row."""

    path: str
    goal: str  # "none set": an informational row, never met or not met
    bench: str | None = None
    judge: Judge | None = None
    conditions: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchRun:
    """One bench as the run ran it."""

    name: str
    arguments: Sequence[str]  # its sizes (the broker, fleet and --json-out come from the run)
    exit_code: int | None  # None: killed at its timeout
    seconds: float
    load_start: LoadAverage
    load_end: LoadAverage
    others: Sequence[str] = ()  # workers and brokers not the run's, running at its start
    results: Results | None = None  # None: it wrote no JSON


@dataclass(frozen=True)
class RunInfo:
    """The run as a whole: when, on which code, how, and on what kind of machine."""

    date: str
    commit: str
    command: str
    quick: bool
    services: str  # which broker and fleet the benches ran against
    machine: str  # the quiet check before the run started
    cores: int
    interrupted: bool = False


@dataclass(frozen=True)
class Row:
    path: str
    goal: str
    figure: Figure | None
    verdict: str
    load: str


def judge(targets: Sequence[Target], runs: Sequence[BenchRun]) -> list[Row]:
    """One row per target, from the runs of this run only (never an earlier run's)."""
    by_name = {r.name: r for r in runs}
    rows = []
    for t in targets:
        run = by_name.get(t.bench) if t.bench else None
        figure: Figure | None = None
        if t.bench is None or t.judge is None:
            verdict = "not measured yet"
        elif run is None:
            verdict = "not run"
        elif run.results is None:
            verdict = failed(run)
        else:
            try:
                figure = t.judge(run.results)
            except (ResultsError, KeyError, TypeError, ValueError) as exc:
                verdict = f"results unreadable: {exc}"
            else:
                others = other_conditions(t, run.results)
                if others:
                    figure = noted(figure, "; ".join(others))
                verdict = failed(run) if run.exit_code != 0 else verdict_of(t, figure, bool(others))
        load = f"{run.load_start[0]:.2f} → {run.load_end[0]:.2f}" if run else ""
        rows.append(Row(t.path, t.goal, figure, verdict, load))
    return rows


def failed(run: BenchRun) -> str:
    if run.exit_code is None:
        return "bench timed out"
    return f"bench failed (exit {run.exit_code})"


def verdict_of(target: Target, figure: Figure, other_conditions: bool = False) -> str:
    if target.goal == "none set":
        return "—"
    if figure.met is None:
        return "not judged"
    verdict = "**met**" if figure.met else "**not met**"
    return verdict + (" (other conditions)" if other_conditions else "")


def other_conditions(target: Target, results: Results) -> list[str]:
    """A note for every condition of the target that the run did not hold."""
    config = results.get("config")
    config = config if isinstance(config, Mapping) else {}
    return [
        f"{key} {config.get(key)!r}, the target's {want!r}"
        for key, want in target.conditions.items()
        if config.get(key) != want
    ]


def noted(figure: Figure, note: str) -> Figure:
    both = "; ".join(n for n in (figure.note, note) if n)
    return Figure(figure.measured, figure.baseline, figure.ratio, figure.met, both)


# --- Markdown -------------------------------------------------------------------------


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(info: RunInfo | None, rows: Sequence[Row], runs: Sequence[BenchRun] = ()) -> str:
    """The text between the markers (without them): the run, its rows, its benches."""
    lines = [
        "<!-- Written by scripts/bench (bench/all.py): a run rewrites everything between the",
        "     summary markers; the sections below them are kept as written. -->",
        "",
    ]
    if info is None:
        lines += ["No `scripts/bench` run recorded yet: the targets, none measured.", ""]
    else:
        lines += [headline(info), ""]
    lines += [
        "| path | target | measured | baseline, same run | ratio | load 1-min, start → end | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f = r.figure or Figure("")
        measured = f.measured + (f" _({f.note})_" if f.note else "")
        cells = [r.path, r.goal, measured, f.baseline, f.ratio, r.load, r.verdict]
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    if runs:
        lines += [
            "",
            "| bench | arguments | seconds | load 1 / 5 / 15-min, start → end | others at start | exit |",
            "|---|---|---|---|---|---|",
        ]
        for run in runs:
            loads = f"{triple(run.load_start)} → {triple(run.load_end)}"
            others = "; ".join(run.others) or "none"
            exit_code = "timed out" if run.exit_code is None else str(run.exit_code)
            arguments = f"`{' '.join(run.arguments)}`"
            cells = [run.name, arguments, f"{run.seconds:.0f}", loads, others, exit_code]
            lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(lines)


def triple(load: LoadAverage) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def headline(info: RunInfo) -> str:
    sizes = "**quick sizes: a smoke check, not figures to compare**" if info.quick else "full sizes"
    interrupted = " **Interrupted: the benches not run are missing.**" if info.interrupted else ""
    return (
        f"**{info.date}**, commit `{info.commit}`, `{info.command}` ({sizes}), {info.cores} cores. "
        f"{info.services} {info.machine}{interrupted} The baseline of a row is measured in the same "
        "run against the same broker; a verdict compares the row's figure with it."
    )


def rewrite(document: str, region: str) -> str:
    """`document` with everything between its markers replaced by `region`."""
    starts, ends = document.count(START), document.count(END)
    if starts != 1 or ends != 1:
        raise MarkerError(f"expected one {START} and one {END}, found {starts} and {ends}")
    head, rest = document.split(START)
    if END in head:
        raise MarkerError(f"{END} comes before {START}")
    _, tail = rest.split(END)
    return f"{head}{START}\n{region.strip(chr(10))}\n{END}{tail}"


def region_of(document: str) -> str:
    """The text between the markers, as `rewrite` put it there."""
    rewrite(document, "")  # the same checks
    return document.split(START)[1].split(END)[0].strip("\n")
