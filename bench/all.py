"""Every benchmark in one run, judged against the targets: `scripts/bench`.

Checks that the machine is quiet (no `faust -A bus worker` or Kafka broker but the run's
own, 1-minute load average at most --max-load): it warns loudly, or with --strict refuses.
Starts its own broker (`scripts/kafka up`, a KAFKA_HOME of its own on free ports) and a
two-worker fleet (`scripts/fleet up --workers 2`, a fresh AGENTBUS_PREFIX) unless
--bootstrap / --workers name them; runs each bench of bench/suite/specs.py as a
subprocess with --json-out, recording the load average before and after it; stops what
it started, also on failure, Ctrl-C or SIGTERM. Then it judges each target from this
run's results only and prints the summary; a full run (all benches, full sizes) writes
it into docs/benchmarks.md between `<!-- summary:start -->` and `<!-- summary:end -->`,
leaving the rest of the page as written. Per-bench JSON, logs and summary.json stay in
the output dir (default .data/bench/<UTC time>/).

    scripts/bench [--only NAME[,NAME]] [--quick] [--strict] [--max-load L]
        [--bootstrap HOST:PORT] [--workers URL,URL] [--prefix P]
        [--doc FILE | --no-doc] [--out DIR] [--settle SECONDS] [--list]

Exit status: 0 every bench passed its own checks, 1 one did not, 2 the run could not
start (bad arguments, a broker or fleet that did not come up), 3 refused (--strict on a
machine that is not quiet), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from suite import machine
from suite.machine import Endpoints, Ours, QuietCheck, ServiceError, Services
from suite.specs import SPECS, TARGETS, BenchSpec
from suite.summary import BenchRun, MarkerError, RunInfo, judge, render, rewrite

BENCH = Path(__file__).resolve().parent
DOC = machine.REPO / "docs" / "benchmarks.md"
QUICK_TIMEOUT_S = 240.0  # one bench at --quick sizes
SETTLE_POLL_S = 5.0


@dataclass(frozen=True)
class Options:
    benches: list[BenchSpec]
    quick: bool
    strict: bool
    max_load: float
    bootstrap: str | None
    workers: list[str] | None
    prefix: str | None
    doc: Path | None  # None: print the summary only
    out: Path
    settle: float


def select(names: str | None) -> list[BenchSpec]:
    """The specs --only names, in SPECS order; a name also selects NAME-* (streams: both)."""
    if not names:
        return list(SPECS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if not any(s.name == n or s.name.startswith(n + "-") for s in SPECS)]
    if unknown:
        raise ValueError(f"no bench {', '.join(unknown)}; the benches: {', '.join(s.name for s in SPECS)}")
    return [s for s in SPECS if any(s.name == n or s.name.startswith(n + "-") for n in wanted)]


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="scripts/bench", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument(
        "--only", help="comma-separated benches to run (see --list); the summary is then not written"
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke check; the summary is then not written"
    )
    p.add_argument("--strict", action="store_true", help="refuse to run on a machine that is not quiet")
    p.add_argument(
        "--max-load", type=float, default=1.0, help="the 1-minute load average a quiet machine stays under"
    )
    p.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP"), help="a broker to use (else its own)"
    )
    p.add_argument(
        "--workers", help="comma-separated worker URLs of a fleet to use (else its own); needs --bootstrap"
    )
    p.add_argument(
        "--prefix", help="the given fleet's AGENTBUS_PREFIX (default: $AGENTBUS_PREFIX or agentbus)"
    )
    p.add_argument(
        "--doc", type=Path, help=f"write the summary into this file (default for a full run: {DOC})"
    )
    p.add_argument("--no-doc", action="store_true", help="never write the summary, only print it")
    p.add_argument(
        "--out",
        type=Path,
        help="per-bench JSON, logs and the run's broker and fleet (default .data/bench/TIME)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=90.0,
        help="after starting a broker and fleet, wait up to this long for the load to drop",
    )
    p.add_argument("--list", action="store_true", help="list the benches and targets, run nothing")
    a = p.parse_args(argv)
    if a.list:
        print_list()
        sys.exit(0)
    try:
        benches = select(a.only)
    except ValueError as exc:
        p.error(str(exc))
    workers = [w.strip().rstrip("/") for w in a.workers.split(",") if w.strip()] if a.workers else None
    if workers and not a.bootstrap:
        p.error("--workers needs the fleet's broker: --bootstrap (or KAFKA_BOOTSTRAP)")
    full = not a.quick and a.only is None
    doc = None if a.no_doc else a.doc or (DOC if full else None)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (a.out or machine.REPO / ".data" / "bench" / stamp).resolve()
    settle = 0.0 if a.quick else a.settle
    return Options(benches, a.quick, a.strict, a.max_load, a.bootstrap, workers, a.prefix, doc, out, settle)


def print_list() -> None:
    for s in SPECS:
        print(f"{s.name:<14} bench/{s.script} {' '.join(s.sizes)}   (--quick: {' '.join(s.quick)})")
    print()
    for t in TARGETS:
        print(f"{t.bench or '(no bench yet)':<14} {t.path}: {t.goal}")


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def warn_loudly(lines: list[str]) -> None:
    bar = "!" * 78
    print(f"\n{bar}", file=sys.stderr)
    for line in lines:
        print(f"!!! {line}", file=sys.stderr)
    print(f"{bar}\n", file=sys.stderr, flush=True)


# --- running one bench --------------------------------------------------------------------


def arguments(spec: BenchSpec, endpoints: Endpoints, quick: bool) -> list[str]:
    """The bench's command-line arguments after its script, without --json-out."""
    args = ["--workers", ",".join(endpoints.workers), "--bootstrap", endpoints.bootstrap]
    if spec.takes_prefix:
        args += ["--prefix", endpoints.prefix]
    return args + list(spec.quick if quick else spec.sizes)


def bench_env(endpoints: Endpoints) -> dict[str, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": endpoints.bootstrap,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(machine.REPO), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    if endpoints.key:
        env["AGENTBUS_KEY"] = endpoints.key
    return env


def tee(source: IO[str], name: str, log: IO[str]) -> None:
    for line in source:
        log.write(line)
        print(f"  {name} | {line}", end="", flush=True)


def run_bench(spec: BenchSpec, endpoints: Endpoints, opts: Options, ours: Ours, known: list[str]) -> BenchRun:
    """Run one bench to its end (or its timeout); its output goes to the terminal and a log.
    Other workers and brokers running at its start are recorded, and warned of when they
    are not the `known` ones (warned of before)."""
    args = arguments(spec, endpoints, opts.quick)
    json_path = opts.out / f"{spec.name}.json"
    json_path.unlink(missing_ok=True)
    command = [sys.executable, str(BENCH / spec.script), *args, "--json-out", str(json_path)]
    found = [p.describe() for p in machine.others(ours)]
    if set(found) - set(known):
        warn_loudly([f"before {spec.name}: not the run's, running now: {', '.join(found)}"])
    timeout = min(spec.timeout_s, QUICK_TIMEOUT_S) if opts.quick else spec.timeout_s
    say(f"{spec.name}: bench/{spec.script} {shlex.join(args)}")
    load_start, began = machine.load(), time.monotonic()
    exit_code: int | None
    with (opts.out / f"{spec.name}.log").open("w") as log:
        proc = subprocess.Popen(
            command,
            cwd=machine.REPO,
            env=bench_env(endpoints),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        reader = threading.Thread(target=tee, args=(proc.stdout, spec.name, log), daemon=True)
        reader.start()
        try:
            exit_code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"{spec.name}: still running after {timeout:.0f} s; killed")
            proc.kill()
            proc.wait()
            exit_code = None
        except BaseException:  # Ctrl-C, SIGTERM: the bench must not outlive the run
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        finally:
            reader.join(timeout=5)
    seconds, load_end = time.monotonic() - began, machine.load()
    sizes = spec.quick if opts.quick else spec.sizes
    return BenchRun(
        spec.name, sizes, exit_code, seconds, load_start, load_end, found, read_results(json_path)
    )


def read_results(path: Path) -> dict[str, Any] | None:
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


# --- the run ---------------------------------------------------------------------------------


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def settle(opts: Options) -> None:
    """After starting a broker and fleet, wait (bounded) for their start-up load to fade."""
    deadline = time.monotonic() + opts.settle
    while machine.load()[0] > opts.max_load and time.monotonic() < deadline:
        say(f"waiting for the 1-minute load average ({machine.load()[0]:.2f}) to drop to {opts.max_load}")
        time.sleep(SETTLE_POLL_S)


def run(opts: Options, argv: list[str]) -> int:
    services = Services(opts.out, opts.bootstrap, opts.workers, opts.prefix, log=say)
    check = QuietCheck(machine.load(), machine.others(services.ours()), opts.max_load)
    if not check.quiet:
        warn_loudly(["the machine is not quiet: figures will be low and noisy", *check.problems()])
        if opts.strict:
            say("--strict: refusing to run")
            return 3
    opts.out.mkdir(parents=True, exist_ok=True)
    info = RunInfo(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=machine.commit(machine.REPO, [opts.doc] if opts.doc else []),
        command=shlex.join(["scripts/bench", *argv]),
        quick=opts.quick,
        services="",
        machine=check.describe(),
        cores=os.cpu_count() or 0,
    )
    runs: list[BenchRun] = []
    interrupted = False
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        endpoints = services.start()
        info = replace(info, services=services.describe(endpoints))
        if services.started:
            settle(opts)
        known = [p.describe() for p in check.others]
        for spec in opts.benches:
            runs.append(run_bench(spec, endpoints, opts, services.ours(), known))
            known = list(runs[-1].others)
    except ServiceError as exc:
        say(str(exc))
        return 2
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted")
    finally:
        # Stopping must finish: a second Ctrl-C would leave the run's broker or fleet behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for problem in services.stop():
            warn_loudly([problem])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    return report(opts, replace(info, interrupted=interrupted), runs)


def report(opts: Options, info: RunInfo, runs: list[BenchRun]) -> int:
    rows = judge(TARGETS, runs)
    region = render(info, rows, runs)
    print("\n" + region + "\n")
    summary = {"info": asdict(info), "runs": [asdict(r) for r in runs], "rows": [asdict(r) for r in rows]}
    (opts.out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    if info.interrupted:
        say(f"interrupted: the summary is not written; results in {opts.out}")
        return 130
    if opts.doc is None:
        say(f"the summary is not written (--quick, --only or --no-doc); results in {opts.out}")
    else:
        try:
            text = rewrite(opts.doc.read_text(), region)
        except (OSError, MarkerError) as exc:
            say(f"could not write the summary into {opts.doc}: {exc}")
            return 2
        scratch = opts.doc.with_name(opts.doc.name + ".tmp")
        scratch.write_text(text)
        scratch.replace(opts.doc)
        say(f"summary written into {opts.doc}; results in {opts.out}")
    failed = [r.name for r in runs if r.exit_code != 0]
    if failed:
        say(f"failed: {', '.join(failed)} (see their logs in {opts.out})")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return run(parse_args(args), args)


if __name__ == "__main__":
    sys.exit(main())
