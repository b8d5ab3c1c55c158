"""scripts/bench without a broker: the targets judged from canned bench results, the
summary's Markdown, its rewrite between the markers of docs/benchmarks.md, the quiet check's
reading of `ps`, the commit, and which benches and arguments a run chooses."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from all import DOC, arguments, parse_args, select
from suite.machine import (
    REPO,
    BusProcess,
    Endpoints,
    Ours,
    QuietCheck,
    ServiceError,
    Services,
    commit,
    parse_ps,
)
from suite.specs import SPECS, TARGETS, restart, sse_latency, sse_memory, stream_p99
from suite.summary import (
    END,
    START,
    BenchRun,
    MarkerError,
    Results,
    ResultsError,
    RunInfo,
    Target,
    judge,
    region_of,
    render,
    rewrite,
)

# --- canned results, shaped as each bench writes them with --json-out --------------------


def publish_results(single: float = 4_000.0, single_p50: float = 6.0, batch: float = 30_000.0) -> Results:
    return {
        "config": {"records": 20000, "concurrency": 32, "batch_size": 100},
        "results": [
            {"mode": "raw", "msgs_per_s": 5_000.0, "p50_ms": 5.0, "p99_ms": 8.0},
            {"mode": "raw-batch", "msgs_per_s": 32_000.0, "p50_ms": 80.0, "p99_ms": 260.0},
            {"mode": "single", "msgs_per_s": single, "p50_ms": single_p50, "p99_ms": 20.0},
            {"mode": "batch", "msgs_per_s": batch, "p50_ms": 90.0, "p99_ms": 300.0},
        ],
    }


def schemas_results(bound_small: float, bound_large: float) -> Results:
    return {
        "config": {"records": 20000, "concurrency": 32, "batch_size": 100},
        "publish": [
            {"mode": "unbound-small", "msgs_per_s": 15_000.0},
            {"mode": "bound-small", "msgs_per_s": bound_small},
            {"mode": "unbound-large", "msgs_per_s": 4_500.0},
            {"mode": "bound-large", "msgs_per_s": bound_large},
        ],
    }


def subscribe_results(auto: float, manual: float, manual_p99: float | None) -> Results:
    return {
        "config": {"records": 20000, "via": "owner"},
        "results": [
            {"mode": "raw", "msgs_per_s": 50_000.0, "ack_p99_ms": None},
            {"mode": "auto", "msgs_per_s": auto, "ack_p99_ms": None},
            {"mode": "manual", "msgs_per_s": manual, "ack_p99_ms": manual_p99},
            {"mode": "pull", "msgs_per_s": 41_000.0, "ack_p99_ms": 20.0},
        ],
    }


def conversations_results(append: float, append_one: float) -> Results:
    return {
        "config": {"records": 2000, "concurrency": 16},
        "results": [
            {"mode": "raw", "rate": 2_500.0, "p50_ms": 4.3, "p99_ms": 38.5},
            {"mode": "append", "rate": append, "p50_ms": 59.3, "p99_ms": 178.9},
            {"mode": "append-one", "rate": append_one, "p50_ms": 258.7, "p99_ms": 523.9},
            {"mode": "raw-read", "rate": 3_800.0, "p50_ms": None, "p99_ms": None},
            {"mode": "replay", "rate": 16_889.0, "p50_ms": None, "p99_ms": None},
        ],
    }


def stream_row(
    mode: str, rate: int, p99: float, reached: float = 1.0, problems: list[str] | None = None
) -> dict[str, Any]:
    return {
        "mode": mode,
        "rate": rate,
        "batch": 1,
        "p99_ms": p99,
        "reached": reached,
        "problems": problems or [],
    }


def streams_results(*rows: dict[str, Any], streams: int = 100) -> Results:
    return {"config": {"streams": streams, "transport": "ws", "batches": [1]}, "results": list(rows)}


def latency_row(
    mode: str, rate: int, p50: float, p99: float, problems: list[str] | None = None
) -> dict[str, Any]:
    return {
        "mode": mode,
        "rate": rate,
        "p50_ms": p50,
        "p99_ms": p99,
        "received_per_s": float(rate),
        "problems": problems or [],
    }


def latency_results(*rows: dict[str, Any], rates: tuple[int, ...] = (1000, 2500)) -> Results:
    return {"config": {"rates": list(rates), "seconds": 10.0}, "results": list(rows)}


def memory_results(
    per_reader: float, after: float, errors_500: int = 0, readers: int = 100, records: int = 200_000
) -> Results:
    return {
        "config": {"readers": readers, "records": records},
        "results": {
            "memory": {
                "baseline_mib": 150.0,
                "peak_mib": 150.0 + per_reader * readers,
                "per_reader_mib": per_reader,
                "after_mib": [after + 10, after],
            },
            "disconnect": {"errors_500": errors_500, "log_errors": ["Traceback"] * errors_500},
        },
    }


def restart_row(mode: str, serving: float, problems: list[str] | None = None) -> dict[str, Any]:
    return {"mode": mode, "ready_s": serving - 1.0, "serving_s": serving, "problems": problems or []}


def recovery_results(
    warm: float, cold: float, keys: int = 1_000_000, cold_problems: list[str] | None = None
) -> Results:
    return {
        "config": {"keys": keys, "created_keys": keys},
        "keys_in_tables": keys + 12,
        "results": [restart_row("warm", warm), restart_row("cold", cold, cold_problems)],
    }


def growth_step(amount: int, cpu: float, p99: float, rss: float, problems: list[str] | None = None) -> Any:
    return {
        "amount": amount,
        "cpu_us_per_record": cpu,
        "p99_ms": p99,
        "rss_mb": rss,
        "problems": problems or [],
    }


def growth_results(readers: list[int], verdict: str = "measured") -> Results:
    """bench/growth.py's JSON: topics and readers measured, the readers' last p99 missing."""
    topics = [growth_step(1, 800.0, 10.0, 300.0), growth_step(1000, 1200.0, 25.0, 420.0)]
    grown = {"cpu_us_per_record": 1.5, "p99_ms": 2.5, "rss_mb": 1.4}
    return {
        "config": {"topics": [1, 10, 100, 1000], "readers": readers},
        "dimensions": [
            {"dimension": "topics", "steps": topics, "growth": grown, "verdict": "measured"},
            {
                "dimension": "readers",
                "steps": topics[:1],
                "growth": {**grown, "p99_ms": None},
                "verdict": verdict,
            },
        ],
    }


def bench_run(name: str, results: Results | None, exit_code: int | None = 0) -> BenchRun:
    return BenchRun(name, ["--records", "1"], exit_code, 12.0, (0.5, 0.4, 0.3), (1.5, 0.6, 0.4), (), results)


def row(rows: list[Any], path_start: str) -> Any:
    (found,) = [r for r in rows if r.path.startswith(path_start)]
    return found


# --- judges -------------------------------------------------------------------------


def test_single_publish_needs_the_ratio_and_the_p50() -> None:
    met = judge(TARGETS, [bench_run("publish", publish_results(single=4_000.0, single_p50=6.5))])
    assert row(met, "single publish").verdict == "**met**"
    assert row(met, "single publish").figure.ratio == "0.80x, p50 +1.5 ms"
    slow_p50 = judge(TARGETS, [bench_run("publish", publish_results(single=4_000.0, single_p50=7.5))])
    assert row(slow_p50, "single publish").verdict == "**not met**"
    slow = judge(TARGETS, [bench_run("publish", publish_results(single=3_000.0, single_p50=5.0))])
    assert row(slow, "single publish").verdict == "**not met**"


def test_batch_publish_against_raw_batch() -> None:
    rows = judge(TARGETS, [bench_run("publish", publish_results(batch=28_800.0))])
    batch = row(rows, "batch publish")
    assert (batch.verdict, batch.figure.ratio, batch.figure.baseline) == (
        "**met**",
        "0.90x",
        "raw-batch 32,000/s",
    )
    rows = judge(TARGETS, [bench_run("publish", publish_results(batch=20_000.0))])
    assert row(rows, "batch publish").verdict == "**not met**"


def test_bound_topics_are_judged_per_schema() -> None:
    rows = judge(TARGETS, [bench_run("schemas", schemas_results(bound_small=14_000.0, bound_large=1_100.0))])
    assert row(rows, "bound topic vs unbound, small").verdict == "**met**"
    large = row(rows, "bound topic vs unbound, large")
    assert (large.verdict, large.figure.ratio) == ("**not met**", "0.24x")


def test_subscriptions_auto_by_ratio_manual_and_pull_by_rate_and_ack_p99() -> None:
    rows = judge(
        TARGETS, [bench_run("subscribe", subscribe_results(auto=31_000.0, manual=45_000.0, manual_p99=60.0))]
    )
    assert row(rows, "subscription, auto").verdict == "**met**"
    assert row(rows, "subscription, manual").verdict == "**not met**"  # fast enough, acks too slow
    assert row(rows, "subscription, pull").verdict == "**met**"
    rows = judge(
        TARGETS, [bench_run("subscribe", subscribe_results(auto=20_000.0, manual=45_000.0, manual_p99=None))]
    )
    assert row(rows, "subscription, auto").verdict == "**not met**"
    assert row(rows, "subscription, manual").verdict.startswith("results unreadable")


def test_conversations_and_the_informational_replay_row() -> None:
    rows = judge(
        TARGETS, [bench_run("conversations", conversations_results(append=1_600.0, append_one=2_100.0))]
    )
    assert row(rows, "conversation append, 16").verdict == "**met**"
    assert row(rows, "conversation append, one").verdict == "**met**"
    replay = row(rows, "conversation replay")
    assert (replay.verdict, replay.figure.ratio) == ("—", "4.44x")
    rows = judge(TARGETS, [bench_run("conversations", conversations_results(append=245.0, append_one=60.0))])
    assert row(rows, "conversation append, 16").verdict == "**not met**"
    assert row(rows, "conversation append, one").verdict == "**not met**"


def test_streams_are_judged_only_where_raw_sustained_the_rate() -> None:
    results = streams_results(
        stream_row("raw", 1000, 10.0),
        stream_row("bus-ws", 1000, 14.0),
        stream_row("raw", 4000, 30.0, reached=0.8),  # raw fell behind: not judged
        stream_row("bus-ws", 4000, 900.0),
    )
    figure = stream_p99(results)
    assert figure.met is True
    assert figure.measured == "p99 14.0 ms at 1,000/s"
    assert "raw did not sustain 4,000/s (reached 0.80)" in figure.note
    over = streams_results(stream_row("raw", 1000, 10.0), stream_row("bus-ws", 1000, 16.0))
    assert stream_p99(over).met is False
    lost = streams_results(stream_row("raw", 1000, 10.0), stream_row("bus-ws", 1000, 12.0, problems=["gap"]))
    assert stream_p99(lost).met is False
    none = streams_results(stream_row("raw", 1000, 10.0, reached=0.5), stream_row("bus-ws", 1000, 12.0))
    rows = judge(TARGETS, [bench_run("streams-1", none)])
    assert row(rows, "token streams, 100 streams, one chunk").verdict == "not judged"


def test_sse_latency_is_judged_at_every_rate_against_raw() -> None:
    both = latency_results(
        latency_row("raw", 1000, 5.0, 20.0),
        latency_row("bus", 1000, 5.9, 24.0),
        latency_row("raw", 2500, 6.0, 30.0),
        latency_row("bus", 2500, 7.0, 36.0),
    )
    figure = sse_latency(both)
    assert figure.met is True
    assert figure.ratio == "p50 +0.9 ms, p99 1.20x; p50 +1.0 ms, p99 1.20x"
    assert figure.measured.startswith("1,000/s: p50 5.9 ms, p99 24.0 ms, 1,000/s received; 2,500/s:")
    rows = judge(TARGETS, [bench_run("sse-latency", both)])
    assert row(rows, "publish → SSE reader").verdict == "**met**"
    slow_p50 = latency_results(latency_row("raw", 1000, 5.0, 20.0), latency_row("bus", 1000, 6.2, 20.0))
    assert sse_latency(slow_p50).met is False
    slow_p99 = latency_results(latency_row("raw", 1000, 5.0, 20.0), latency_row("bus", 1000, 5.0, 24.2))
    assert sse_latency(slow_p99).met is False


def test_sse_latency_with_records_lost_is_not_met() -> None:
    lost = latency_results(
        latency_row("raw", 1000, 5.0, 20.0), latency_row("bus", 1000, 5.0, 20.0, problems=["3 lost"])
    )
    figure = sse_latency(lost)
    assert figure.met is False
    assert figure.note == "bus lost, repeated or failed records at 1,000/s"
    quick = latency_results(
        latency_row("raw", 100, 5.0, 20.0), latency_row("bus", 100, 5.0, 20.0), rates=(100,)
    )
    verdict = row(judge(TARGETS, [bench_run("sse-latency", quick)]), "publish → SSE reader").verdict
    assert verdict == "**met** (other conditions)"
    with pytest.raises(ResultsError, match="no bus mode at 1,000/s"):
        sse_latency(latency_results(latency_row("raw", 1000, 5.0, 20.0)))


def test_sse_memory_needs_a_bounded_reader_and_the_memory_back() -> None:
    # Allowed after the readers left: 150 MiB + 20% + 16 MiB = 196 MiB.
    figure = sse_memory(memory_results(per_reader=1.5, after=196.0))
    assert figure.met is True
    assert figure.measured == "1.50 MiB a reader (peak 300 MiB), 196 MiB after they left"
    assert (figure.baseline, figure.ratio, figure.note) == ("baseline 150 MiB", "after: 1.31x", "")
    rows = judge(TARGETS, [bench_run("sse-memory", memory_results(per_reader=1.5, after=160.0))])
    assert row(rows, "100 slow SSE readers").verdict == "**met**"
    assert sse_memory(memory_results(per_reader=2.1, after=160.0)).met is False
    assert sse_memory(memory_results(per_reader=1.5, after=197.0)).met is False
    broken = sse_memory(memory_results(per_reader=1.5, after=160.0, errors_500=2))
    assert (broken.met, broken.note) == (False, "4 answers of 500 or error lines from the disconnect")
    quick = memory_results(per_reader=1.5, after=160.0, readers=4, records=2000)
    verdict = row(judge(TARGETS, [bench_run("sse-memory", quick)]), "100 slow SSE readers").verdict
    assert verdict == "**met** (other conditions)"
    with pytest.raises(ResultsError, match="no RSS after"):
        sse_memory({"results": {"memory": {"baseline_mib": 1.0, "after_mib": []}}})


def test_restart_needs_warm_and_cold_under_30_s() -> None:
    figure = restart(recovery_results(warm=12.0, cold=29.9))
    assert (figure.met, figure.note) == (True, "")
    assert figure.measured == "warm 12.0 s, cold 29.9 s (ready 11.0 / 28.9 s), 1,000,012 keys"
    assert row(
        judge(TARGETS, [bench_run("recovery", recovery_results(12.0, 20.0))]), "worker restart"
    ).verdict == ("**met**")
    assert restart(recovery_results(warm=12.0, cold=30.0)).met is False
    unanswered = restart(recovery_results(warm=12.0, cold=20.0, cold_problems=["cold: 3 of 64 keys"]))
    assert unanswered.met is False and unanswered.note == "keys unanswered or a restart failed"


def test_a_restart_with_fewer_keys_says_so() -> None:
    short = recovery_results(warm=8.0, cold=10.0, keys=50_000)
    figure = restart(short)
    assert figure.note == "50,012 keys in the tables, not 1,000,000"
    restarted = row(judge(TARGETS, [bench_run("recovery", short)]), "worker restart")
    assert restarted.verdict == "**met** (other conditions)"
    assert "created_keys 50000, the target's 1000000" in restarted.figure.note


def test_cost_growth_rows_give_first_last_and_the_factor_with_nothing_to_meet() -> None:
    rows = judge(TARGETS, [bench_run("growth", growth_results([1, 10, 100, 1000]))])
    topics = row(rows, "cost growth with topics")
    assert topics.verdict == "—"
    assert topics.figure.measured == (
        "1 → 1,000 topics: CPU/record 800 → 1,200 µs (x1.50), p99 10.0 → 25.0 ms (x2.50), "
        "RSS 300 → 420 MB (x1.40)"
    )
    readers = row(rows, "cost growth with readers")
    assert "p99 10.0 → 10.0 ms (no ratio)" in readers.figure.measured and readers.figure.note == ""
    assert row(rows, "cost growth with agents").verdict == "results unreadable: no 'agents' steps"


def test_cost_growth_says_when_a_step_failed_or_the_steps_were_others() -> None:
    smaller = growth_results([1, 10, 100, 500], verdict="failed at 500")
    readers = row(judge(TARGETS, [bench_run("growth", smaller, exit_code=1)]), "cost growth with readers")
    assert readers.verdict == "bench failed (exit 1)"
    assert readers.figure.note == "failed at 500; readers [1, 10, 100, 500], the target's [1, 10, 100, 1000]"


# --- rows without a figure, and other conditions ------------------------------------------


def test_rows_say_why_they_have_no_verdict() -> None:
    runs = [
        bench_run("publish", None, exit_code=2),  # aborted before writing its JSON
        bench_run("schemas", None, exit_code=None),  # killed at its time limit
        bench_run("subscribe", {"results": [{"mode": "raw"}]}),  # no auto mode in its JSON
        bench_run(
            "conversations", conversations_results(1_600.0, 2_100.0), exit_code=1
        ),  # its own checks failed
    ]
    rows = judge(TARGETS, runs)
    assert row(rows, "single publish").verdict == "bench failed (exit 2)"
    assert row(rows, "bound topic vs unbound, small").verdict == "bench timed out"
    assert row(rows, "subscription, auto").verdict == "results unreadable: no 'auto' mode"
    appended = row(rows, "conversation append, 16")
    assert appended.verdict == "bench failed (exit 1)" and appended.figure.measured == "1,600/s"
    assert row(rows, "token streams, 100 streams, one chunk").verdict == "not run"
    assert row(rows, "worker restart").verdict == "not run"
    assert row(rows, "publish → SSE reader").verdict == "not run"
    assert judge([Target("no bench yet", "≥ 1x")], runs)[0].verdict == "not measured yet"
    assert row(rows, "single publish").load == "0.50 → 1.50"


def test_a_run_under_other_conditions_says_so() -> None:
    quick = {**publish_results(), "config": {"concurrency": 4, "batch_size": 10}}
    single = row(judge(TARGETS, [bench_run("publish", quick)]), "single publish")
    assert single.verdict == "**met** (other conditions)"
    assert single.figure.note == "concurrency 4, the target's 32"
    small = streams_results(stream_row("raw", 40, 20.0), stream_row("bus-ws", 40, 9.0), streams=4)
    assert (
        "streams 4, the target's 100"
        in row(judge(TARGETS, [bench_run("streams-1", small)]), "token streams, 100 streams, one").figure.note
    )


def test_targets_name_benches_of_specs() -> None:
    names = {s.name for s in SPECS}
    assert {t.bench for t in TARGETS if t.bench} <= names
    assert names <= {t.bench for t in TARGETS}, "a bench no target reads"
    assert [t.path for t in TARGETS if t.bench is None] == []
    assert {"sse-latency", "sse-memory", "recovery"} <= names


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_each_bench_accepts_its_sizes(spec: Any, quick: bool) -> None:
    bench = importlib.import_module(spec.script.removesuffix(".py"))
    endpoints = Endpoints("127.0.0.1:9092", ["http://127.0.0.1:1", "http://127.0.0.1:2"], "p", None)
    config = bench.parse_args([*arguments(spec, endpoints, quick), "--json-out", "x.json"])
    assert config.json_out == "x.json"


# --- the summary and the rewrite ------------------------------------------------------


INFO = RunInfo(
    date="2026-12-05 07:00 UTC",
    commit="abc1234+dirty",
    command="scripts/bench",
    quick=False,
    services="The run started its own broker.",
    machine="Before the run the machine was quiet.",
    cores=2,
)


def test_render_names_the_run_and_each_bench() -> None:
    runs = [bench_run("publish", publish_results())]
    text = render(INFO, judge(TARGETS, runs), runs)
    assert "**2026-12-05 07:00 UTC**, commit `abc1234+dirty`, `scripts/bench` (full sizes), 2 cores." in text
    assert "| publish | `--records 1` | 12 | 0.50 / 0.40 / 0.30 → 1.50 / 0.60 / 0.40 | none | 0 |" in text
    assert "a smoke check" not in text
    quick = render(RunInfo(**{**INFO.__dict__, "quick": True}), [], [])
    assert "quick sizes: a smoke check" in quick


def test_render_escapes_pipes_in_cells() -> None:
    rows = judge([Target("a | b", "none set")], [])
    assert "| a \\| b | none set |" in render(None, rows)


DOCUMENT = f"# Benchmarks\n\nIntro.\n\n{START}\nold table\n{END}\n\n## History\n\nkept | as is\n"


def test_rewrite_replaces_only_what_is_between_the_markers() -> None:
    new = rewrite(DOCUMENT, "new table\n")
    assert new == f"# Benchmarks\n\nIntro.\n\n{START}\nnew table\n{END}\n\n## History\n\nkept | as is\n"
    assert rewrite(new, "new table") == new
    assert region_of(new) == "new table"


@pytest.mark.parametrize(
    "document",
    ["no markers", f"{START}\n{START}\n{END}", f"{START}\n{END}\n{END}", f"{END}\n{START}"],
    ids=["none", "two starts", "two ends", "reversed"],
)
def test_rewrite_refuses_a_document_without_one_pair_of_markers(document: str) -> None:
    with pytest.raises(MarkerError):
        rewrite(document, "table")


def test_the_benchmarks_page_has_its_markers() -> None:
    page = DOC.read_text()
    region = region_of(page)
    assert "| path | target |" in region
    assert rewrite(page, region) == page


# --- the machine ---------------------------------------------------------------------------

PS = """\
  101 /srv/.venv/bin/python3.11 /srv/.venv/bin/faust -A bus worker -l info --web-port 6067 --web-host ::1
  102 /srv/.venv/bin/python3.11 -m faust -A bus worker -l info
  103 /srv/.venv/bin/python3.11 -m faust --app=bus worker --web-port=7001
  104 /srv/.venv/bin/faust -A other worker --web-port 6068
  105 /srv/.venv/bin/pytest tests/unit/test_bench_suite.py
  106 java -Xmx1g -cp /srv/.kafka/libs/* kafka.Kafka /srv/.kafka/node1/server.properties
  107 java -cp x kafka.Kafka /gone/server.properties
"""
CONFIG = "process.roles=broker,controller\nlisteners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n"


def test_ps_output_is_read_into_workers_and_brokers() -> None:
    configs = {"/srv/.kafka/node1/server.properties": CONFIG}
    found = parse_ps(PS, configs.get)
    assert found == [
        BusProcess(101, "worker", 6067),
        BusProcess(102, "worker", 6066),
        BusProcess(103, "worker", 7001),
        BusProcess(106, "broker", 9092),
        BusProcess(107, "broker", None),
    ]


def test_the_quiet_check_leaves_out_the_runs_own() -> None:
    found = parse_ps(PS, {"/srv/.kafka/node1/server.properties": CONFIG}.get)
    ours = Ours(pids=frozenset({107}), worker_ports=frozenset({6066, 6067}), broker_ports=frozenset({9092}))
    others = [p for p in found if not ours.owns(p)]
    assert others == [BusProcess(103, "worker", 7001)]
    check = QuietCheck((1.5, 1.0, 0.5), others, max_load=1.0)
    assert not check.quiet
    assert check.problems() == [
        "the 1-minute load average is 1.50, over 1.0",
        "1 other worker(s) running: worker pid 103 on :7001",
    ]
    assert QuietCheck((0.4, 1.0, 0.5), [], max_load=1.0).quiet


def test_commit_is_dirty_for_tracked_changes_but_not_for_the_summary(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "benchmarks.md").write_text("table\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    doc = tmp_path / "docs" / "benchmarks.md"
    clean = commit(tmp_path, [doc])
    assert len(clean) >= 7 and not clean.endswith("+dirty")
    doc.write_text("new table\n")
    (tmp_path / "untracked.txt").write_text("")
    assert commit(tmp_path, [doc]) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert commit(tmp_path, [doc]) == clean + "+dirty"


class Recording(Services):
    """Services whose scripts are only recorded; `fleet up` fails as a worker that never got healthy."""

    calls: list[str]

    def script(self, name: str, args: list[str], env: dict[str, str], timeout: float) -> str:
        self.calls.append(f"{name} {' '.join(args)}")
        if (name, args[0]) == ("fleet", "up"):
            raise ServiceError("worker on :1 not healthy")
        return "127.0.0.1:1\n"


def test_a_start_that_fails_halfway_still_stops_what_it_started(tmp_path: Path) -> None:
    services = Recording(tmp_path, log=lambda _: None)
    services.calls = []
    with pytest.raises(ServiceError):
        services.start()
    assert services.stop() == []
    assert services.calls == ["kafka up", "fleet up --workers 2", "fleet down", "kafka down"]
    assert services.stop() == [] and len(services.calls) == 4  # stopped once


def test_given_services_are_never_started_or_stopped(tmp_path: Path) -> None:
    services = Recording(tmp_path, "127.0.0.1:9092", ["http://127.0.0.1:6066"], "pfx", log=lambda _: None)
    services.calls = []
    assert services.start() == Endpoints("127.0.0.1:9092", ["http://127.0.0.1:6066"], "pfx", None)
    services.stop()
    assert services.calls == []
    assert services.ours().worker_ports == {6066} and services.ours().broker_ports == {9092}


# --- choosing benches, arguments and where the summary goes --------------------------------


def test_only_selects_benches_by_name_or_family() -> None:
    assert [s.name for s in select("streams,publish")] == ["publish", "streams-1", "streams-10"]
    assert [s.name for s in select(None)] == [s.name for s in SPECS]
    with pytest.raises(ValueError, match="no bench nope"):
        select("nope")


def test_the_summary_is_written_by_full_runs_or_where_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP", raising=False)
    assert parse_args([]).doc == DOC
    assert parse_args(["--quick"]).doc is None
    assert parse_args(["--only", "publish"]).doc is None
    assert parse_args(["--quick", "--doc", str(tmp_path / "x.md")]).doc == tmp_path / "x.md"
    assert parse_args(["--no-doc"]).doc is None
    assert parse_args(["--quick"]).out.is_relative_to(REPO / ".data" / "bench")
    with pytest.raises(SystemExit):
        parse_args(["--workers", "http://127.0.0.1:6066"])  # whose broker?


def test_only_benches_that_read_internal_topics_get_the_prefix() -> None:
    endpoints = Endpoints("b:1", ["http://w:1", "http://w:2"], "pfx", None)
    (publish,) = select("publish")
    assert arguments(publish, endpoints, quick=True) == [
        "--workers",
        "http://w:1,http://w:2",
        "--bootstrap",
        "b:1",
        *publish.quick,
    ]
    (conversations,) = select("conversations")
    assert arguments(conversations, endpoints, quick=False)[4:6] == ["--prefix", "pfx"]
