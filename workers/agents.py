"""Applies the agents and heartbeats logs to their views, and evaluates liveness.

Records may be applied twice after a crash, so every change is idempotent: a
registration only fills an empty key, beats keep the latest time, a transition sets the
liveness it names. The liveness timer runs on every worker, for the agents it owns.

Beats are written to the view in batches (BeatBatch): every table write is a RocksDB put
and a changelog record, and writing the view and the applied offset for every beat cost
the processor most of its time. A batch is written at most FLUSH_S after its first beat,
before any other record of its partition (so order holds), and whenever someone waits for
the view (a barrier); what the view reflects is still marked only once it is written.
A worker that crashes (or loses the partition) with a batch unwritten leaves the view up
to FLUSH_S of beats behind the log: a new owner may see an agent's last beat that much
older, far less than the two intervals it takes to be late.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from agentbus_client.models.agents import Agent

from bus.agents import service as ops
from bus.agents.models import AgentRecord, HeartbeatRecord, HeartbeatView
from bus.kafka.context import BusContext
from bus.kafka.faust_app import app
from bus.state.keyed import (
    APPLIED,
    BARRIER_KIND,
    KIND_HEADER,
    KeyedState,
    on_revoked,
    replayed,
    run_processor,
)
from tables.agents import agents, heartbeats

__all__ = ["LIVENESS_TICK_S", "evaluate_liveness"]

log = logging.getLogger(__name__)
LIVENESS_TICK_S = 0.5
FLUSH_S = 0.5  # a beat reaches the view at most this long after it reached the processor
FLUSH_BEATS = 1_000


class BeatBatch:
    """Beats applied to the view per partition in one go (see the module docstring)."""

    def __init__(self) -> None:
        self.views: dict[int, dict[str, HeartbeatView]] = {}
        self.since: dict[int, float] = {}  # monotonic: the partition's oldest unwritten beat
        self.asked: set[int] = set()  # partitions a flush was asked for (a barrier record)

    def add(self, state: KeyedState, partition: int, key: str, record: HeartbeatRecord) -> None:
        views = self.views.setdefault(partition, {})
        view = views.get(key) or state.get(key, HeartbeatView) or HeartbeatView()
        if view.last_beat_at is not None and record.at < view.last_beat_at:
            return
        newer = view.last_beat_at is None or record.at - view.last_beat_at >= record.coalesce_ms
        if newer or record.status != view.status:
            views[key] = view.model_copy(update={"last_beat_at": record.at, "status": record.status})
            self.since.setdefault(partition, time.monotonic())

    def due(self, partition: int) -> bool:
        since = self.since.get(partition)
        if since is None:
            return False  # nothing to write (the beat changed nothing the view keeps)
        return len(self.views[partition]) >= FLUSH_BEATS or time.monotonic() - since >= FLUSH_S

    def flush(self, state: KeyedState, partition: int) -> None:
        """Write the partition's batch (inside the processing of one of its records)."""
        for key, view in self.views.pop(partition, {}).items():
            state.put(key, view)
        self.since.pop(partition, None)
        self.asked.discard(partition)

    def overdue(self) -> list[int]:
        """Partitions whose batch waits past FLUSH_S for a record to be written with."""
        now, found = time.monotonic(), []
        for partition, since in self.since.items():
            if now - since >= FLUSH_S and partition not in self.asked:
                self.asked.add(partition)
                found.append(partition)
        return found

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.views.pop(partition, None)
            self.since.pop(partition, None)
            self.asked.discard(partition)


BATCH = BeatBatch()

app.on_partitions_revoked.connect(on_revoked([agents, heartbeats]))


@app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
async def forget_beats(sender: Any, revoked: set[Any], **_: Any) -> None:
    ops.forget({tp.partition for tp in revoked})
    BATCH.forget({tp.partition for tp in revoked if tp.topic == heartbeats.kafka_topic})


@app.agent(agents.topic)  # type: ignore[untyped-decorator]
async def apply_agent_records(stream: faust.StreamT[bytes]) -> None:
    await run_processor(agents, stream, apply_agent)


@app.agent(heartbeats.topic)  # type: ignore[untyped-decorator]
async def apply_heartbeats(stream: faust.StreamT[bytes]) -> None:
    """run_processor's loop, with beats batched (BeatBatch)."""
    async for event in stream.events():
        message, key = event.message, str(event.key)
        partition = message.partition
        if replayed(heartbeats, partition, message.offset):
            continue
        try:
            if dict(message.headers or []).get(KIND_HEADER) == BARRIER_KIND:
                BATCH.flush(heartbeats, partition)
            else:
                record = HeartbeatRecord.model_validate_json(event.value)
                if record.kind == "beat":
                    BATCH.add(heartbeats, partition, key, record)
                    if not BATCH.due(partition):
                        continue  # marked applied with its batch (nobody waits for a beat)
                    BATCH.flush(heartbeats, partition)
                else:
                    BATCH.flush(heartbeats, partition)  # first: the record may be about them
                    apply_heartbeat(heartbeats, key, record)
        except Exception:  # one unreadable record must not stop the log behind it
            log.exception("skipping heartbeats record at %d/%d", partition, message.offset)
        heartbeats.table[f"{APPLIED}{partition}"] = str(message.offset).encode()


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


def apply_heartbeat(state: KeyedState, key: str, record: HeartbeatRecord) -> None:
    """A reset or a transition (beats go through BATCH)."""
    if record.kind == "reset":
        state.remove(key)
        return
    view = state.get(key, HeartbeatView) or HeartbeatView()
    if record.kind == "transition" and record.liveness is not None and record.liveness != view.liveness:
        state.put(key, view.model_copy(update={"liveness": record.liveness, "since": record.at}))


async def evaluate_liveness(ctx: BusContext) -> None:
    """Every LIVENESS_TICK_S (a timer of bus.assembly): flush heartbeats, move agents along."""
    if not ctx.ready():
        return
    try:
        for partition in BATCH.overdue():  # a record to write the batch with
            await ops.flush_heartbeats(ctx, partition)
        await ops.evaluate_liveness(ctx)
    except Exception:  # a timer that raises stops for good: log and try again next tick
        log.exception("liveness evaluation failed")
