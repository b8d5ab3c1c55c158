"""The pure parts of bench/growth.py, without a broker or fleet: reading a worker's CPU and
memory from /proc, the cost per probe record, the growth from the first step to the last,
the dimension's verdict, the steps a command line asks for, and where the pids come from."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import pytest
from growth import (
    Config,
    Dimension,
    Step,
    Window,
    cost_per_record,
    document,
    growth,
    parse_args,
    parse_stat,
    ratio,
    step_of,
    steps_of,
    usage_of,
    verdict,
    worker_pids,
)
from growth_work import sustained
from publish import BenchError

# A faust worker's /proc/PID/stat: utime 2856 and stime 252 ticks, rss 38782 pages.
STAT = (
    "21977 (faust) S 1 21945 10397 0 -1 4194304 35641 202 0 0 2856 252 0 0 20 0 5 0 2390868 "
    "760672256 38782 18446744073709551615 94216936099840 94216936100181 140736253000224 0 0 0 0 "
    "16781317 18946 0 0 0 17 1 0 0 0 0 0 94216936111536 94216936112152 94217364733952 "
    "140736253008169 140736253008276 140736253008276 140736253009896 0\n"
)


def test_cpu_and_rss_are_read_from_proc_stat() -> None:
    usage = parse_stat(STAT, ticks_per_s=100, page_bytes=4096)
    assert usage.cpu_s == pytest.approx(31.08)  # (2856 + 252) / 100
    assert usage.rss_bytes == 38782 * 4096


def test_a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() -> None:
    odd = STAT.replace("(faust)", "(a (b) c)")
    assert parse_stat(odd, 100, 4096) == parse_stat(STAT, 100, 4096)


def test_this_process_can_be_read_and_a_gone_one_cannot() -> None:
    usage = usage_of([os.getpid()])
    assert usage.cpu_s > 0 and usage.rss_bytes > 1_000_000
    with pytest.raises(BenchError, match="did it exit"):
        usage_of([2**22 + 1])  # above the kernel's pid_max default


def test_cost_per_record_and_the_probes_own_share() -> None:
    idle = Window(seconds=5.0, cpu_s=0.5)  # the standing work: 0.1 cores
    probe = Window(seconds=10.0, cpu_s=3.0)
    total, marginal = cost_per_record(idle, probe, records=2000)
    assert total == pytest.approx(1500.0)  # 3 s / 2000 records
    assert marginal == pytest.approx(1000.0)  # (3 - 0.1 x 10) s / 2000 records
    assert all(math.isnan(x) for x in cost_per_record(idle, probe, records=0))


def step(amount: int, cpu: float, p99: float, idle: float = 0.1, problems: list[str] | None = None) -> Step:
    return Step(
        amount, 2000, 200.0, cpu, cpu * 0.8, idle, p99 / 3, p99, 300.0 + amount / 10, 0.5, problems or []
    )


def test_growth_is_the_last_step_over_the_first() -> None:
    found = growth([step(1, 800.0, 10.0), step(10, 900.0, 12.0), step(1000, 1200.0, 25.0)])
    assert found["cpu_us_per_record"] == 1.5
    assert found["marginal_us_per_record"] == 1.5
    assert found["p99_ms"] == 2.5
    assert found["rss_mb"] == pytest.approx(400.0 / 300.1, abs=0.01)
    assert found["idle_cores"] == 1.0


def test_no_growth_without_a_first_figure() -> None:
    assert ratio(0.0, 5.0) is None  # an idle fleet's 0 cores grows by no factor
    assert ratio(math.nan, 5.0) is None
    assert ratio(2.0, math.nan) is None
    assert growth([]) == dict.fromkeys(growth([step(1, 1.0, 1.0)]))


def test_the_verdict_says_measured_only_when_every_step_ran_and_passed() -> None:
    planned = [1, 10, 100]
    assert verdict([step(1, 1, 1), step(10, 1, 1), step(100, 1, 1)], planned) == "measured"
    broken = [step(1, 1, 1), step(10, 1, 1, problems=["3 of 10 readers closed"]), step(100, 1, 1)]
    assert verdict(broken, planned) == "failed at 10"
    assert verdict([step(1, 1, 1)], planned) == "stopped after 1 of 3 steps"


def test_a_step_without_answers_has_no_figures() -> None:
    empty = step_of(10, Window(1.0, 0.1), Window(2.0, 0.5), [], 2**20, ["all probe requests failed"])
    assert empty.records == 0 and math.isnan(empty.cpu_us_per_record) and math.isnan(empty.p99_ms)
    assert empty.rss_mb == 1.0 and empty.idle_cores == 0.1


def test_the_json_has_no_nans(tmp_path: Path) -> None:
    cfg = parse_args(["--quick", "--json-out", str(tmp_path / "x.json")])
    empty = step_of(10, Window(1.0, 0.1), Window(2.0, 0.5), [], 0, ["no answers"])
    found = document(cfg, [Dimension("topics", [empty], growth([empty]), "failed at 10")])
    text = json.dumps(found, allow_nan=False)  # raises on a NaN
    assert json.loads(text)["dimensions"][0]["steps"][0]["p99_ms"] is None
    assert found["config"]["topics"] == [1, 10] and "json_out" not in found["config"]


def test_steps_are_decades_up_to_the_largest_or_given() -> None:
    assert steps_of("1000", first=1) == [1, 10, 100, 1000]
    assert steps_of("500", first=1) == [1, 10, 100, 500]
    assert steps_of("100000", first=10) == [10, 100, 1000, 10000, 100000]
    assert steps_of("5", first=10) == [5]
    assert steps_of("1,50,2000", first=1) == [1, 50, 2000]
    for bad in ("0", "10,5", "x", ""):
        with pytest.raises(ValueError):
            steps_of(bad, first=1)


def test_quick_and_full_sizes() -> None:
    full = parse_args([])
    assert full.topics == [1, 10, 100, 1000] and full.conversations[-1] == 100_000
    assert full.agents == [10, 100, 1000, 10000] and full.readers == [1, 10, 100, 1000]
    assert (full.rate, full.seconds, full.probe_records) == (200.0, 10.0, 2000)
    quick = parse_args(["--quick", "--readers", "1,5"])
    assert quick.topics == [1, 10] and quick.readers == [1, 5] and quick.seconds == 2.0
    assert parse_args(["--dimensions", "readers,topics"]).dimensions == ("topics", "readers")
    for bad in (["--dimensions", "cats"], ["--rate", "0"], ["--heartbeat-interval-ms", "100"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def config(pids: list[int] | None = None, fleet_dir: str | None = None) -> Config:
    cfg = parse_args(["--workers", "http://127.0.0.1:7001,http://127.0.0.1:7002"])
    return replace(cfg, pids=pids, fleet_dir=fleet_dir)


def test_pids_come_from_the_flag_else_the_fleet_dirs_pid_files(tmp_path: Path) -> None:
    assert worker_pids(config(pids=[os.getpid()])) == [os.getpid()]
    with pytest.raises(BenchError, match="did it exit"):
        worker_pids(config(pids=[2**22 + 1]))  # each one must be readable
    for port in (7001, 7002):
        (tmp_path / f"worker-{port}.pid").write_text(f"{os.getpid()}\n")
    assert worker_pids(config(fleet_dir=str(tmp_path))) == [os.getpid(), os.getpid()]
    (tmp_path / "worker-7002.pid").unlink()
    with pytest.raises(BenchError, match="0 bus workers serve :7002"):
        worker_pids(config(fleet_dir=str(tmp_path)))  # no pid file, and no worker on the port


def test_heartbeats_keep_up_within_one_slot_of_the_offered_rate() -> None:
    assert sustained(2, offered_per_s=10 / 30, seconds=7.0)  # 2.3 slots in the window
    assert sustained(1, offered_per_s=10 / 30, seconds=7.0)  # one missed by where the window fell
    assert not sustained(0, offered_per_s=10 / 30, seconds=7.0)
    assert sustained(9_000, offered_per_s=1_000, seconds=10.0)  # 90%
    assert not sustained(8_000, offered_per_s=1_000, seconds=10.0)
