"""kill -9 of a broker under publish load, on a cluster of three (RF 3, min.insync 2):
every acknowledged message is in the log once, where its receipt says; no valid key is
refused; and the fleet acknowledges publishes again within a bound."""

from __future__ import annotations

import pytest

from tests.faults.harness import table
from tests.faults.scenarios import Rig, broker_kills, under_load

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# The killed broker's partitions have no leader until the controller fences it, after
# broker.session.timeout.ms (Kafka's 9 s); its replicas in the ISR lead at once then.
# Every state partition's transactions write to the load's topics, so the fleet may
# acknowledge nothing for that long, plus a metadata refresh and the clients' retry
# backoff (1 s at most). 30 s leaves room for two shared cores running three brokers,
# two workers and the load.
UNAVAILABLE_BOUND_S = 30.0
# Faust logs this when its group leader assigns without a topic the group reads. The
# first metadata refresh that lists the topic (the one a broker kill forces) then looks
# like a new topic and rebalances the whole group in the middle of the outage: every
# state partition revoked while its transactions wait for the killed broker.
UNASSIGNED_TOPIC = "Ignoring missing topic"


async def test_a_broker_killed_under_load_loses_and_doubles_nothing(rig: Rig) -> None:
    report = await under_load(rig, "broker kill", 20, 10, broker_kills(seconds=0, down_s=20, up_s=0))
    print(table([report]))
    assert report.problems() == [], table([report])
    assert report.longest_gap_s <= UNAVAILABLE_BOUND_S, (report.longest_gap_s, report.events)
    assert logged(rig, UNASSIGNED_TOPIC) == []


def logged(rig: Rig, text: str) -> list[str]:
    """The lines of the rig's workers' logs that hold text."""
    return [
        line
        for worker in rig.fleet.workers
        if worker.log_path.exists()
        for line in worker.log_path.read_text(errors="replace").splitlines()
        if text in line
    ]
