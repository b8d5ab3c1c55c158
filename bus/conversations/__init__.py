"""Conversations: ordered, gap-free message threads, replay and live follow. Tool calls,
streams and approvals write to the same per-conversation log.

Rooms: service (the owner's appends and views), calls (the records a tool call writes),
http, models.
"""
