"""Agents: registrations, heartbeats, liveness, the events about them and inbox messages."""

from __future__ import annotations

from typing import Literal

from agentbus_client.models.agents import (
    MAX_SCHEMA_BYTES,
    Agent,
    AgentCard,
    AgentEvent,
    AgentList,
    AgentMessageSpec,
    AgentSkill,
    AgentSpec,
    Capability,
    HeartbeatReceipt,
    HeartbeatRequest,
    InboxMessage,
    Liveness,
    OperatorState,
    SendReceipt,
    StateChange,
    agent_key,
)
from agentbus_client.models.tools import Usage
from pydantic import BaseModel

__all__ = [
    "DEAD_AFTER",
    "LATE_AFTER",
    "MAX_SCHEMA_BYTES",
    "TRANSITIONS",
    "Agent",
    "AgentCard",
    "AgentEvent",
    "AgentList",
    "AgentMessageSpec",
    "AgentRecord",
    "AgentSkill",
    "AgentSpec",
    "Capability",
    "HeartbeatReceipt",
    "HeartbeatRecord",
    "HeartbeatRequest",
    "HeartbeatView",
    "InboxMessage",
    "Liveness",
    "OperatorState",
    "SendReceipt",
    "StateChange",
    "agent_key",
    "inbox_subscription_id",
]

# The state machine operators drive; a state moving to itself is a no-op, not an error.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "enabled": ("draining", "disabled"),
    "draining": ("enabled", "disabled"),
    "disabled": ("enabled",),
}
LATE_AFTER = 2  # heartbeat intervals without a beat
DEAD_AFTER = 5


class AgentRecord(BaseModel):
    """A change to an agent, as a record on the agents log."""

    kind: Literal["registered", "state", "deleted", "usage"]
    agent: Agent | None = None  # registered
    state: OperatorState | None = None  # state
    usage: Usage | None = None  # usage: what one result or stream end reported
    at: int  # unix ms


class HeartbeatRecord(BaseModel):
    """A record on the heartbeats log: a beat, a liveness transition, or a reset (register, delete)."""

    kind: Literal["beat", "transition", "reset"]
    at: int  # unix ms
    status: str = ""  # beat
    coalesce_ms: int = 0  # beat: the view may skip it if it has one this much older
    liveness: Liveness | None = None  # transition: the new liveness


class HeartbeatView(BaseModel):
    """The heartbeats log's view of one agent."""

    last_beat_at: int | None = None
    status: str = ""
    liveness: Liveness = "unknown"  # as last announced
    since: int | None = None  # when it became that


def inbox_subscription_id(agent_id: str) -> str:
    """'.' never appears in a subscription id, so an inbox never collides with one."""
    return f"inbox.{agent_id}"
