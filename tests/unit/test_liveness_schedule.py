"""The liveness tick's schedule: when an agent's liveness can next change, and which
agents a tick looks at (bus.agents.service.LivenessSchedule)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agentbus_client.models.agents import Agent

from bus.agents.service import LivenessSchedule, liveness_of, next_change

CREATED = 1_000_000
INTERVAL = 1_000


def agent() -> Agent:
    # Only the interval and the registration time matter to liveness.
    fields: dict[str, Any] = {
        "heartbeat_interval_ms": INTERVAL,
        "created_at": datetime.fromtimestamp(CREATED / 1000, UTC),
    }
    return Agent.model_construct(**fields)


def test_liveness_holds_until_next_change_and_moves_there() -> None:
    """For every moment (with and without a beat), liveness_of is the same until
    next_change and differs at it; with no next change it stays as it is."""
    a = agent()
    for beat in (None, CREATED + 500):
        for now in range(CREATED, CREATED + 8 * INTERVAL, 125):
            here = liveness_of(a, beat, now)
            change = next_change(a, beat, now)
            if change is None:
                assert liveness_of(a, beat, now + 100 * INTERVAL) == here
                continue
            assert change > now
            assert liveness_of(a, beat, change - 1) == here
            assert liveness_of(a, beat, change) != here


def test_next_change_times() -> None:
    a = agent()
    assert next_change(a, None, CREATED) == CREATED + 5 * INTERVAL  # unknown, then dead
    assert next_change(a, None, CREATED + 5 * INTERVAL) is None
    beat = CREATED + 3_000
    assert next_change(a, beat, beat) == beat + 2 * INTERVAL  # late
    assert next_change(a, beat, beat + 2 * INTERVAL) == beat + 5 * INTERVAL  # dead
    assert next_change(a, beat, beat + 5 * INTERVAL) is None


def test_a_tick_takes_what_is_due_once_and_the_latest_time_wins() -> None:
    schedule = LivenessSchedule()
    schedule.at("a", 100)
    schedule.at("b", 200)
    schedule.at("c", 300)
    schedule.at("b", 400)  # moved later: its old time is stale
    schedule.at("c", None)  # nothing to look at until a beat
    assert schedule.take(99) == []
    assert schedule.take(250) == ["a"]
    assert schedule.take(250) == []
    assert schedule.take(1_000) == ["b"]


def test_touched_keys_come_every_tick_until_seen_or_tried_out() -> None:
    schedule = LivenessSchedule()
    schedule.touch("new")  # registered: the view may not have it yet
    schedule.touch("beat")
    schedule.at("beat", 50)
    assert sorted(schedule.take(100)) == ["beat", "new"]  # each once
    schedule.seen("beat")
    for _ in range(LivenessSchedule.TOUCH_TRIES - 1):
        assert schedule.take(100) == ["new"]
    assert schedule.take(100) == []


def test_full_pass_after_its_period_or_when_the_partitions_change() -> None:
    schedule = LivenessSchedule()
    mine = frozenset({1, 2})
    assert schedule.wants_full_pass(0, mine)
    schedule.touch("k")
    schedule.full_pass_done(0, mine)
    assert schedule.take(0) == []  # a full pass looked at every agent, touched ones too
    assert not schedule.wants_full_pass(LivenessSchedule.FULL_PASS_MS - 1, mine)
    assert schedule.wants_full_pass(LivenessSchedule.FULL_PASS_MS, mine)
    assert schedule.wants_full_pass(1, frozenset({1, 2, 3}))
    schedule.pass_again()
    assert schedule.wants_full_pass(1, mine)
