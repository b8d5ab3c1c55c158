"""Applies the agents and heartbeats logs to their views, and evaluates liveness.

Records may be applied twice after a crash, so every change is idempotent: a
registration only fills an empty key, beats keep the latest time, a transition sets the
liveness it names. The liveness timer runs on every worker, for the agents it owns.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from bus import agents as ops
from bus.faust_app import app
from bus.keyed import KeyedState, on_revoked, run_processor
from bus.models.agents import Agent, AgentRecord, HeartbeatRecord, HeartbeatView
from tables.agents import agents, heartbeats

log = logging.getLogger(__name__)
LIVENESS_TICK_S = 0.5

app.on_partitions_revoked.connect(on_revoked([agents, heartbeats]))


@app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
async def forget_beats(sender: Any, revoked: set[Any], **_: Any) -> None:
    ops.forget({tp.partition for tp in revoked})


@app.agent(agents.topic)  # type: ignore[untyped-decorator]
async def apply_agent_records(stream: faust.StreamT[bytes]) -> None:
    await run_processor(agents, stream, apply_agent)


@app.agent(heartbeats.topic)  # type: ignore[untyped-decorator]
async def apply_heartbeats(stream: faust.StreamT[bytes]) -> None:
    await run_processor(heartbeats, stream, apply_heartbeat)


def apply_agent(state: KeyedState, key: str, value: bytes, headers: dict[str, str], offset: int) -> None:
    record = AgentRecord.model_validate_json(value)
    current = state.get(key, Agent)
    if record.kind == "registered" and record.agent is not None:
        if current is None:
            state.put(key, record.agent)
    elif current is None:
        return  # a record for an agent deleted since
    elif record.kind == "state" and record.state is not None:
        state.put(
            key, current.model_copy(update={"state": record.state, "updated_at": ops.as_datetime(record.at)})
        )
    elif record.kind == "deleted":
        state.remove(key)
    elif record.kind == "usage" and record.usage is not None:
        state.put(key, current.model_copy(update={"usage": current.usage.plus(record.usage)}))


def apply_heartbeat(state: KeyedState, key: str, value: bytes, headers: dict[str, str], offset: int) -> None:
    record = HeartbeatRecord.model_validate_json(value)
    if record.kind == "reset":
        state.remove(key)
        return
    view = state.get(key, HeartbeatView) or HeartbeatView()
    if record.kind == "beat" and (
        view.last_beat_at is None
        or record.status != view.status
        or record.at - view.last_beat_at >= max(record.coalesce_ms, 0)
    ):
        if view.last_beat_at is None or record.at >= view.last_beat_at:
            state.put(key, view.model_copy(update={"last_beat_at": record.at, "status": record.status}))
    elif record.kind == "transition" and record.liveness is not None and record.liveness != view.liveness:
        state.put(key, view.model_copy(update={"liveness": record.liveness, "since": record.at}))


@app.timer(interval=LIVENESS_TICK_S)  # type: ignore[untyped-decorator]
async def evaluate_liveness() -> None:
    from bus.main import ctx  # late: bus.main imports this module

    if not ctx.ready():
        return
    try:
        await ops.evaluate_liveness(ctx)
    except Exception:  # a timer that raises stops for good: log and try again next tick
        log.exception("liveness evaluation failed")
