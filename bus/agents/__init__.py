"""Agents: registration with capabilities and their JSON Schemas, heartbeats and liveness,
operator state, and each agent's inbox (a subscription of the bus's own).

Rooms: service (the owner's decisions), http (registry routes), inbox_http (reading the
inbox), models (wire shapes).
"""
