"""scripts/soak: the fault scenarios of tests/faults for minutes each, on a cluster of three
brokers and a fleet of its own, then a table of what the load saw. Not run in CI.

    scripts/soak [--minutes M] [--scenarios broker-kill,worker-restart,owner-pause,churn]
                 [--publishers N] [--workers N]

Each scenario: 20 s of load, then its faults again and again for the rest of M minutes
(less 20 s), then 20 s of load with everything mended, then the check of the log:

  broker-kill     kill -9 the broker leading the most partitions, 30 s down, start it on its data, 30 s up
  worker-restart  kill -9 a worker, 10 s down, start it on its data dir, 30 s once it is ready
  owner-pause     SIGSTOP a worker for 20 s (its partitions move), SIGCONT, 30 s up
  churn           every 20 s add a worker (empty data dir), then remove one (SIGTERM, kill -9 in turn)

Environment: KAFKA_HOME (default .data/soak/kafka), KAFKA_PORT (first broker port:
brokers take it and the next two, controllers +100 to +102; default free ports),
KAFKA_LIBS (the jars), AGENTBUS_FLEET_DIR (the workers' data dirs and logs, kept after
the run; default .data/soak/fleet), AGENTBUS_BASE_PORT (worker i listens on it + i;
default free ports). Exit status 1 when a scenario lost, doubled, misplaced or reordered
a message, gave one up, answered a valid key 401/403/404, or left a partition unserved.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tests.faults.harness import LoadConfig, Report, table
from tests.faults.scenarios import (
    Breaker,
    Rig,
    broker_kills,
    churn,
    owner_pauses,
    running_rig,
    under_load,
    worker_restarts,
)
from tests.fleet import REPO, free_kafka_port

LEAD_S = 20.0  # load before the first fault
TAIL_S = 20.0  # load after the last one is mended

SCENARIOS: dict[str, Callable[[float], Breaker]] = {
    "broker-kill": lambda seconds: broker_kills(seconds, down_s=30, up_s=30),
    "worker-restart": lambda seconds: worker_restarts(seconds, down_s=10, up_s=30),
    "owner-pause": lambda seconds: owner_pauses(seconds, pause_s=20, up_s=30),
    "churn": lambda seconds: churn(seconds, step_s=20),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=3.0, help="per scenario (default 3)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, run in this order")
    p.add_argument("--publishers", type=int, default=LoadConfig.publishers, help="concurrent publishers")
    p.add_argument("--workers", type=int, default=2, help="the fleet's workers between faults")
    a = p.parse_args(argv)
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = set(a.scenarios) - set(SCENARIOS)
    if unknown or not a.scenarios:
        p.error(f"--scenarios takes a comma-separated subset of {','.join(SCENARIOS)}")
    if a.minutes * 60 < LEAD_S + TAIL_S or a.publishers < 1 or a.workers < 2:
        p.error(
            f"--minutes must leave room for {LEAD_S + TAIL_S:.0f}s of load around the faults; --workers >= 2"
        )
    return a


async def soak(rig: Rig, names: list[str], minutes: float) -> list[Report]:
    reports = []
    for name in names:
        print(f"soak: {name} for {minutes:g} min", file=sys.stderr, flush=True)
        breaker = SCENARIOS[name](minutes * 60 - LEAD_S - TAIL_S)
        report = await under_load(rig, name, LEAD_S, TAIL_S, breaker)
        print(table([report]), file=sys.stderr, flush=True)
        reports.append(report)
    return reports


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    home = Path(os.environ.get("KAFKA_HOME") or REPO / ".data" / "soak" / "kafka").resolve()
    port = int(os.environ.get("KAFKA_PORT") or free_kafka_port(3))
    fleet_dir = Path(os.environ.get("AGENTBUS_FLEET_DIR") or REPO / ".data" / "soak" / "fleet").resolve()
    base = os.environ.get("AGENTBUS_BASE_PORT")
    print(f"soak: brokers from :{port} in {home}; fleet in {fleet_dir}", file=sys.stderr, flush=True)
    with running_rig(home, port, fleet_dir, a.workers, int(base) if base else None) as rig:
        rig.config = replace(rig.config, publishers=a.publishers)
        reports = asyncio.run(soak(rig, a.scenarios, a.minutes))
    print(table(reports))
    bad = {r.scenario: r.problems() for r in reports if r.problems()}
    for scenario, problems in bad.items():
        print(f"soak: {scenario}: {'; '.join(problems)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
