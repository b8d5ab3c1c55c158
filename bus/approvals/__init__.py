"""Approvals: human approval before a gated tool call or publish goes out, decided exactly
once in a Kafka transaction.

Rooms: service, http, models.
"""
