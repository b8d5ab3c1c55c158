"""Agents and their heartbeats: two logs keyed by agent, each with its view (bus.state.keyed).

Both topics are co-partitioned with every keyed state topic, so the worker that owns an
agent holds its registration, its heartbeats and its liveness.
"""

from __future__ import annotations

from bus.state.keyed import KeyedState

__all__ = ["agents", "heartbeats"]

agents = KeyedState("agents", help="Agent registrations and operator state, by agent key.")
heartbeats = KeyedState(
    "heartbeats", help="Each agent's last heartbeat and the liveness last announced, by agent key."
)
