"""kill -9 of a worker under publish load and its restart on its data dir, polled all the
while with a valid key: no 401 (503 not_ready until it has caught up), nothing lost or
doubled."""

from __future__ import annotations

import pytest

from tests.faults.harness import table
from tests.faults.scenarios import Rig, under_load, worker_restarts

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# Clients go to the other worker at once (refused connections); only the keys whose
# owner was killed wait for the group to notice: the session timeout (10 s), the
# rebalance, and the new owner's catch-up on the partition's log.
UNAVAILABLE_BOUND_S = 30.0


async def test_a_worker_killed_and_restarted_under_load_never_refuses_a_valid_key(rig: Rig) -> None:
    report = await under_load(
        rig, "worker kill+restart", 15, 15, worker_restarts(seconds=0, down_s=5, up_s=0)
    )
    print(table([report]))
    assert report.problems() == [], table([report])
    assert report.longest_gap_s <= UNAVAILABLE_BOUND_S, (report.longest_gap_s, report.events)
